//! Issue 6, item 1: a hostile PDF (a decompression bomb, a file that never
//! finishes) cannot take the portal down or keep it down. Its text is not
//! indexed; it stays listed, downloadable and findable by name.

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{
    Browser, Halted, PIN, TestPortal, pdf_of, pdf_with_text, portal_bin, succeeded,
};

fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut out = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
    out.extend(data);
    out.extend(b"\nendstream");
    out
}

/// A one-page PDF whose page content is `content` (its stream dictionary `dict`),
/// with an extra object 5 if given.
fn page(dict: &str, content: &[u8], extra: Option<Vec<u8>>) -> Vec<u8> {
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_vec(),
        stream(dict, content),
    ];
    objects.extend(extra);
    pdf_of(&objects)
}

/// A zlib stream of `chunk` repeated `times`, built without compressing it all:
/// each chunk is deflated alone and flushed, so the pieces are identical and
/// join into one valid stream (ending with an empty final block and the checksum).
fn repeated_zlib(chunk: &[u8], times: usize) -> Vec<u8> {
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(chunk).unwrap();
    encoder.flush().unwrap();
    let piece = encoder.get_ref().clone();
    let mut out = vec![0x78, 0xda];
    for _ in 0..times {
        out.extend(&piece);
    }
    out.extend([0x03, 0x00]);
    out.extend(adler32_of_repeats(chunk, times).to_be_bytes());
    out
}

fn adler32_of_repeats(chunk: &[u8], times: usize) -> u32 {
    const MOD: u64 = 65521;
    let len = chunk.len() as u64 % MOD;
    let sum = chunk.iter().map(|&x| u64::from(x)).sum::<u64>() % MOD;
    let weighted = chunk
        .iter()
        .enumerate()
        .map(|(i, &x)| (chunk.len() - i) as u64 % MOD * u64::from(x) % MOD)
        .sum::<u64>()
        % MOD;
    let (mut a, mut b) = (1u64, 0u64);
    for _ in 0..times {
        b = (b + len * a + weighted) % MOD;
        a = (a + sum) % MOD;
    }
    ((b << 16) | a) as u32
}

const MIB: usize = 1024 * 1024;

/// 4 GiB of zeros as a page's content stream (about 4 MB on the wire).
fn content_bomb() -> Vec<u8> {
    page(
        "/Filter /FlateDecode",
        &repeated_zlib(&vec![0; MIB], 4096),
        None,
    )
}

/// 30 MiB of drawing operators: under any stream cap, but parsed into objects
/// they need gigabytes.
fn parse_bomb() -> Vec<u8> {
    let ops = b"0 0 m\n".repeat(128 * 1024);
    page("/Filter /FlateDecode", &repeated_zlib(&ops, 40), None)
}

/// 4 GiB of zeros in an object stream, which parsers inflate while loading.
fn object_stream_bomb() -> Vec<u8> {
    let bomb = stream(
        "/Type /ObjStm /N 1 /First 4 /Filter /FlateDecode",
        &repeated_zlib(&vec![0; MIB], 4096),
    );
    page("", b"", Some(bomb))
}

/// Every Form XObject draws the next one ten times, nine levels deep: a billion
/// drawings from a 2 KB file, in almost no memory.
fn endless_pdf() -> Vec<u8> {
    let resources = |n: usize| format!("/Resources << /XObject << /X {n} 0 R >> >>");
    let draw_ten = b"/X Do ".repeat(10);
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R {} >>",
            resources(5)
        )
        .into_bytes(),
        stream("", &draw_ten),
    ];
    for level in 0..9 {
        let form = "/Type /XObject /Subtype /Form /BBox [0 0 1 1]";
        objects.push(if level < 8 {
            stream(&format!("{form} {}", resources(6 + level)), &draw_ten)
        } else {
            stream(form, b"q Q")
        });
    }
    pdf_of(&objects)
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Waits (up to a minute) until `sql` yields `want`.
async fn wait_for(portal: &TestPortal, sql: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while portal.query_i64(sql) != want {
        assert!(Instant::now() < deadline, "{sql} never gave {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_indexed(portal: &TestPortal, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while portal.state.search.count() != want {
        assert!(Instant::now() < deadline, "the index never held {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn extraction(portal: &TestPortal, id: &str) -> (String, String, i64) {
    let row = |col: &str| {
        format!(
            "SELECT {col} FROM text_extraction t JOIN documents d ON d.id = t.document_id WHERE d.public_id = '{id}'"
        )
    };
    (
        portal.query_text(&row("state")),
        portal.query_text(&row("coalesce(reason, '')")),
        portal.query_i64(&row("attempts")),
    )
}

/// Searches for each word and expects the page to show the text paired with it.
async fn finds(b: &Browser, searches: &[(&str, &str)]) {
    for (word, shown) in searches {
        b.search(word).await.expect(shown);
    }
}

async fn download(b: &Browser, id: &str) -> Vec<u8> {
    let r = b.get_raw(&format!("/documents/{id}/download"), &[]).await;
    assert_eq!(r.status, 200);
    r.body
}

/// Runs `portal reindex` (the real binary) on a stopped portal's data.
fn reindex(halted: &Halted, args: &[&str]) -> String {
    let out = Command::new(portal_bin())
        .arg("reindex")
        .args(args)
        .current_dir(halted.dir.path())
        .env_remove("PORTAL_CONFIG")
        .env("PORTAL_STORAGE__DATA_DIR", &halted.config.storage.data_dir)
        .env("PORTAL_DOCUMENTS__EXTRACT_MEMORY_MB", "128")
        .output()
        .unwrap();
    succeeded(&out)
}

#[test]
fn the_bombs_are_what_they_claim() {
    let mut inflated = Vec::new();
    flate2::read::ZlibDecoder::new(&repeated_zlib(b"0 0 m\n", 3)[..])
        .read_to_end(&mut inflated)
        .expect("a valid zlib stream, checksum included");
    assert_eq!(inflated, b"0 0 m\n0 0 m\n0 0 m\n");
    // 64 of the 4096 pieces of the content bomb (inflating all 4 GiB takes a while).
    let pieces = repeated_zlib(&vec![0; MIB], 64);
    let mut decoder = flate2::read::ZlibDecoder::new(&pieces[..]);
    let n = std::io::copy(&mut decoder, &mut std::io::sink()).expect("valid, checksum included");
    assert_eq!(n, 64 * MIB as u64);
    let bomb = content_bomb();
    assert!(bomb.len() < 5 * MIB, "{}", bomb.len());
}

#[tokio::test]
async fn pdf_bombs_neither_take_the_portal_down_nor_keep_it_down() {
    let portal = TestPortal::start_with(|c| c.documents.extract_memory_mb = 128).await;
    let jane = portal.client("Jane Doe", "jane@example.com", PIN).await;
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let resting = status_kib("VmRSS:");

    let before = jane
        .upload("before.pdf", &pdf_with_text("qualified dividends"))
        .await;
    let bombs = [
        ("bomb content.pdf", content_bomb()),
        ("bomb parse.pdf", parse_bomb()),
        ("bomb objstm.pdf", object_stream_bomb()),
    ];
    let mut bomb_ids = Vec::new();
    for (name, bytes) in &bombs {
        bomb_ids.push(jane.upload(name, bytes).await);
    }
    let after = jane
        .upload("after.pdf", &pdf_with_text("mortgage interest"))
        .await;
    wait_for(
        &portal,
        "SELECT count(*) FROM text_extraction WHERE state != 'pending'",
        5,
    )
    .await;
    wait_indexed(&portal, 5).await;

    // The server's memory did not follow the bombs (4 GiB each).
    let grown_mib = status_kib("VmHWM:").saturating_sub(resting) / 1024;
    assert!(grown_mib < 256, "the server grew by {grown_mib} MiB");

    // Each outcome is recorded, with a reason that quotes nothing from the file.
    let (state, reason, _) = extraction(&portal, &bomb_ids[0]);
    assert_eq!(
        (state.as_str(), reason.as_str()),
        ("failed", "a compressed stream inflates to more than 32 MB")
    );
    let (state, reason, _) = extraction(&portal, &bomb_ids[1]);
    assert_eq!(
        (state.as_str(), reason.as_str()),
        ("failed", "needed more than 128 MB of memory (or crashed)")
    );
    for id in [&before, &after] {
        let (state, reason, _) = extraction(&portal, id);
        assert_eq!(state, "done", "{reason}");
    }

    // The portal answers; the bombs are listed, downloadable and found by name;
    // the documents around them are searchable by their text.
    let list = jane.get("/documents").await;
    assert_eq!(list.status, 200);
    for ((name, bytes), id) in bombs.iter().zip(&bomb_ids) {
        list.expect(name);
        assert!(
            download(&jane, id).await == *bytes,
            "{name} downloads intact"
        );
    }
    finds(
        &jane,
        &[
            ("bomb", "3 documents found"),
            ("dividends", "before.pdf"),
            ("mortgage", "after.pdf"),
        ],
    )
    .await;

    // A restart rebuilds the lost index without reading the bombs again.
    portal.state.search.clear().unwrap();
    let portal = portal.restart_on_same_address().await;
    wait_indexed(&portal, 5).await;
    for id in &bomb_ids[..2] {
        assert_eq!(extraction(&portal, id).2, 1, "not extracted again");
    }
    assert_eq!(
        extraction(&portal, &before).2,
        2,
        "a good PDF is read again"
    );
    finds(
        &jane,
        &[("dividends", "before.pdf"), ("bomb", "3 documents found")],
    )
    .await;

    // So does `portal reindex`; `--retry-failed` tries them once more, and survives.
    let halted = portal.halt().await;
    assert!(reindex(&halted, &[]).contains("Indexed 5 documents."));
    let portal = halted.start().await;
    for id in &bomb_ids[..2] {
        assert_eq!(extraction(&portal, id).2, 1, "not extracted again");
    }
    let halted = portal.halt().await;
    let out = reindex(&halted, &["--retry-failed"]);
    assert!(out.contains("Reading the text of 2 PDFs again."), "{out}");
    let portal = halted.start().await;
    for id in &bomb_ids[..2] {
        let (state, _, attempts) = extraction(&portal, id);
        assert_eq!((state.as_str(), attempts), ("failed", 1), "read anew");
    }
    jane.search("mortgage").await.expect("after.pdf");
    portal.stop().await;
}

#[tokio::test]
async fn a_pdf_that_never_finishes_is_stopped_and_indexing_goes_on() {
    let portal = TestPortal::start_with(|c| c.documents.extract_seconds = 2).await;
    let jane = portal.client("Jane Doe", "jane@example.com", PIN).await;
    let started = Instant::now();
    let endless = jane.upload("endless.pdf", &endless_pdf()).await;
    let after = jane
        .upload("after.pdf", &pdf_with_text("mortgage interest"))
        .await;

    // While it runs, the portal answers as usual.
    let asked = Instant::now();
    jane.get("/documents").await.expect("endless.pdf");
    assert!(asked.elapsed() < Duration::from_secs(1));

    wait_for(
        &portal,
        "SELECT count(*) FROM text_extraction WHERE state = 'done'",
        1,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let (state, reason, _) = extraction(&portal, &endless);
    assert_eq!(state, "failed");
    assert!(reason.contains("2 seconds"), "{reason}");
    assert_eq!(extraction(&portal, &after).0, "done");
    wait_indexed(&portal, 2).await;
    finds(
        &jane,
        &[("mortgage", "after.pdf"), ("endless", "endless.pdf")],
    )
    .await;
    portal.stop().await;
}

#[tokio::test]
async fn a_damaged_pdf_does_not_stop_the_index_rebuild() {
    let (portal, jane) = TestPortal::with_jane().await;
    jane.upload("good.pdf", &pdf_with_text("qualified dividends"))
        .await;
    let damaged = jane
        .upload("damaged.pdf", &pdf_with_text("capital gains"))
        .await;
    wait_indexed(&portal, 2).await;
    let path = portal.blob_path(&damaged);
    let mut stored = std::fs::read(&path).unwrap();
    stored[100] ^= 1;
    std::fs::write(&path, stored).unwrap();

    portal.state.search.clear().unwrap();
    let n = portal::documents::content::reindex(&portal.state)
        .await
        .unwrap();
    assert_eq!(n, 2);
    finds(
        &jane,
        &[("dividends", "good.pdf"), ("damaged", "damaged.pdf")],
    )
    .await;
    portal.stop().await;
}

#[tokio::test]
async fn a_pdf_being_read_when_the_process_died_is_not_read_again_at_restart() {
    let (portal, jane) = TestPortal::with_jane().await;
    let id = jane
        .upload("Employer statement.pdf", &pdf_with_text("wages and tips"))
        .await;
    wait_indexed(&portal, 1).await;
    // As the database looks after a crash during the extraction, before the
    // index was written.
    portal.sql("UPDATE text_extraction SET state = 'pending'");
    portal.state.search.clear().unwrap();

    let portal = portal.restart_on_same_address().await;
    wait_indexed(&portal, 1).await;
    assert_eq!(
        extraction(&portal, &id),
        ("pending".into(), String::new(), 1)
    );
    finds(
        &jane,
        &[
            ("wages", "No documents match"),
            ("employer", "Employer statement.pdf"),
        ],
    )
    .await;
    portal.stop().await;
}

#[test]
fn extract_text_is_a_hidden_command_from_stdin_to_stdout() {
    let help = Command::new(portal_bin()).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(!String::from_utf8_lossy(&help.stdout).contains("extract-text"));

    let mut child = Command::new(portal_bin())
        .arg("extract-text")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pdf = pdf_with_text("qualified dividends");
    child.stdin.take().unwrap().write_all(&pdf).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("qualified dividends"));
}
