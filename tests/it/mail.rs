//! Mail delivery when the SMTP server misbehaves, and the admin commands around it
//! (issue 7): hung servers, shutdown mid-delivery, expired access codes, `portal
//! mail test`, and the commands beside a running portal.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use portal::config::{Config, SmtpSecurity};
use portal::infra::smtp::{SmtpServer, Step};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::common::{ADD_JANE, Smtp, TestPortal, portal_binary, spawn_serve, staff_browser};

/// Short limits so that a hung server costs the tests a second, not half a minute.
fn quick_mail(c: &mut Config) {
    c.mail.timeout_seconds = 1;
    c.mail.send_timeout_seconds = 2;
    c.mail.retry_delays_seconds = vec![1];
    c.mail.code_retry_seconds = 1;
}

/// Runs the `portal` binary off the async runtime (the test's servers keep running).
/// A command that hangs fails the test (and is killed) after a minute.
async fn run_portal(dir: &Path, args: &[&str]) -> Output {
    let child = portal_binary(dir)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let waiting = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap());
    match tokio::time::timeout(Duration::from_secs(60), waiting).await {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("portal {args:?} did not finish within a minute");
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A portal.toml for the binary: `data_dir`, an SMTP server on loopback (or none),
/// cheap argon2, and any extra lines.
fn write_config(dir: &Path, data_dir: &Path, smtp_port: Option<u16>, extra: &str) {
    let port = free_port();
    let smtp = smtp_port.map_or(String::new(), |p| {
        format!("smtp_host = \"127.0.0.1\"\nsmtp_port = {p}\nsmtp_security = \"none\"\n")
    });
    std::fs::write(
        dir.join("portal.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
             [storage]\ndata_dir = \"{}\"\n\
             [security]\nargon2_memory_kib = 64\nargon2_iterations = 1\n\
             [mail]\n{smtp}{extra}",
            data_dir.display()
        ),
    )
    .unwrap();
}

/// Invites a client without waiting for the invitation to be delivered.
async fn invite_only(portal: &TestPortal, name: &str, email: &str) {
    portal.invite_from(name, email, "").await;
}

/// Invites `email` while the mail server fails, and waits until the first attempt
/// to deliver the invitation has failed.
async fn invite_and_fail_once(portal: &TestPortal, name: &str, email: &str) {
    invite_only(portal, name, email).await;
    let attempts = format!("SELECT attempts FROM mail_queue WHERE to_addr = '{email}'");
    portal.eventually_i64(&attempts, 1).await;
}

async fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_hung_smtp_server_delays_mail_but_does_not_stop_or_lose_it() {
    let portal = TestPortal::start_with(quick_mail).await;
    portal.smtp.set_hung(true);
    invite_only(&portal, "Jane Doe", "jane@example.com").await;
    // Each attempt gives up after the step timeout and is retried on a new connection.
    portal
        .eventually_i64(
            "SELECT count(*) FROM mail_queue WHERE attempts >= 2 AND last_error LIKE '%no answer within 1 s while waiting for the server''s greeting%'",
            1,
        )
        .await;
    assert!(
        portal.smtp.connections() >= 2,
        "a second connection was tried"
    );
    assert_eq!(portal.smtp.count_to("jane@example.com"), 0);

    // Once the server answers again, the message goes out within timeout + retry.
    portal.smtp.set_hung(false);
    portal
        .smtp
        .first("jane@example.com", "created a client portal")
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        portal.smtp.count_to("jane@example.com"),
        1,
        "delivered once"
    );
    let health = portal::infra::mail::health(&portal.state.db).await.unwrap();
    assert_eq!(health.pending, 0);
    assert!(health.last_error.unwrap().contains("greeting"));
    assert!(health.last_sent_at >= health.last_error_at);
    portal.stop().await;
}

#[tokio::test]
async fn access_codes_are_retried_promptly_and_dropped_once_expired() {
    let portal = TestPortal::start_with(|c| {
        quick_mail(c);
        c.mail.retry_delays_seconds = vec![600];
        c.accounts.signup = portal::config::Signup::Open;
    })
    .await;
    portal.smtp.set_hung(true);
    invite_and_fail_once(&portal, "Bob Roe", "bob@example.com").await;
    let jane = portal.browser();
    jane.start_sign_up("Jane Doe", "jane@example.com")
        .await
        .expect("Verify your email");
    // The code is retried every second while the invitation waits its 600 s.
    portal
        .eventually_i64(
            "SELECT attempts >= 3 FROM mail_queue WHERE to_addr = 'jane@example.com'",
            1,
        )
        .await;
    assert_eq!(
        portal.query_i64("SELECT attempts FROM mail_queue WHERE to_addr = 'bob@example.com'"),
        1
    );

    // The code expires during the outage; when the server is back it is not sent.
    portal.sql(
        "UPDATE mail_queue SET expires_at = unixepoch() - 1 WHERE to_addr = 'jane@example.com'",
    );
    portal.smtp.set_hung(false);
    portal
        .deliver_invitation_now(" WHERE to_addr = 'bob@example.com'", "bob@example.com")
        .await;
    portal
        .eventually_i64(
            "SELECT count(*) FROM mail_queue WHERE to_addr = 'jane@example.com'
             AND dropped_at IS NOT NULL AND sent_at IS NULL AND text_body = ''",
            1,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        portal.smtp.matching("jane@example.com", "access code"),
        0,
        "an expired code is never delivered late"
    );

    // `portal mail status` says what was dropped and why.
    let cwd = tempfile::tempdir().unwrap();
    write_config(cwd.path(), &portal.dir.path().join("data"), None, "");
    let out = run_portal(cwd.path(), &["mail", "status"]).await;
    let status = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(status.contains("dropped: 1"), "{status}");
    assert!(
        status.contains("to jane@example.com: its access code expired"),
        "{status}"
    );
    assert!(status.contains("last error: no answer within"), "{status}");
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_do_not_wait_on_a_hung_server_and_sigterm_leaves_mail_queued() {
    let smtp = Smtp::start().await;
    smtp.set_hung(true);
    let dir = tempfile::tempdir().unwrap();
    // Long step limits: without a shutdown deadline the stop would wait on them.
    write_config(
        dir.path(),
        &dir.path().join("data"),
        Some(smtp.port),
        "timeout_seconds = 20\nsend_timeout_seconds = 40\nretry_delays_seconds = [1]\n",
    );

    let started = Instant::now();
    let out = run_portal(dir.path(), &ADD_JANE).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "client add returned after {:?}",
        started.elapsed()
    );
    let said = text(&out.stdout);
    assert!(
        said.contains("Created the portal") && said.contains("is queued"),
        "{said}"
    );

    // serve's worker connects to the hung server; SIGTERM stops it within seconds.
    let mut server = start_serve(dir.path());
    wait_until("serve's delivery attempt", Duration::from_secs(15), || {
        smtp.connections() >= 2
    })
    .await;
    let stopping = Instant::now();
    let status = sigterm_and_wait(&mut server, Duration::from_secs(10)).await;
    assert!(status.success(), "exit {status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "stopped after {:?}",
        stopping.elapsed()
    );
    let db = rusqlite::Connection::open(dir.path().join("data/portal.db")).unwrap();
    let (sent, failed, body, due_in): (Option<i64>, Option<i64>, String, i64) = db
        .query_row(
            "SELECT sent_at, failed_at, text_body, next_attempt_at - unixepoch() FROM mail_queue",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert!(
        sent.is_none() && failed.is_none(),
        "neither sent nor given up"
    );
    assert!(body.contains("Jane"), "the message is kept whole");
    assert!(due_in <= 1, "due again at once, not after a claim lapses");
    drop(db);

    // With the server answering again, the next start delivers it, once.
    smtp.set_hung(false);
    let mut server = start_serve(dir.path());
    smtp.wait_nth("jane@example.com", "created a client portal", 0)
        .await;
    let status = sigterm_and_wait(&mut server, Duration::from_secs(10)).await;
    assert!(status.success());
    assert_eq!(smtp.count_to("jane@example.com"), 1);
}

fn start_serve(dir: &Path) -> std::process::Child {
    let (server, first) = spawn_serve(dir);
    assert!(first.contains("Portal is running"), "{first}");
    server
}

async fn sigterm_and_wait(
    server: &mut std::process::Child,
    limit: Duration,
) -> std::process::ExitStatus {
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = server.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            panic!("portal serve did not stop within {limit:?} of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintain_beside_a_running_portal_does_nothing_and_says_so() {
    let mut portal = TestPortal::start().await;
    let staff = staff_browser(&portal).await;
    portal.invite("Jane Doe", "jane@example.com").await;
    let cid = portal.client_id("jane@example.com");
    staff
        .publish(
            &cid,
            "2023 / Letters",
            "",
            &[("quarterly estimate.pdf", b"old".to_vec())],
        )
        .await;
    let owner = portal.query_i64(&format!("SELECT id FROM clients WHERE public_id = '{cid}'"));
    let search = portal.state.search.clone();
    wait_until("indexing", Duration::from_secs(10), || {
        search.search(owner, "quarterly", 10).unwrap().len() == 1
    })
    .await;
    portal.sql("UPDATE documents SET created_at = created_at - 400 * 86400");
    let data = portal.dir.path().join("data");
    let cwd = tempfile::tempdir().unwrap();
    write_config(cwd.path(), &data, None, "");
    let blobs = || walk_files(&data.join("documents"));
    let blobs_before = blobs();

    let out = run_portal(cwd.path(), &["maintain"]).await;
    let said = text(&out.stderr);
    assert!(!out.status.success(), "refused: nothing was done");
    assert!(
        said.contains("maintenance did not run; nothing was changed")
            && said.contains("running portal"),
        "{said}"
    );
    assert!(!said.contains("Something went wrong"), "{said}");
    assert_eq!(portal.query_i64("SELECT count(*) FROM documents"), 1);
    assert_eq!(
        portal.query_i64("SELECT count(*) FROM audit_log WHERE event = 'document_removed'"),
        0
    );
    assert_eq!(blobs(), blobs_before, "no file removed");
    assert_eq!(search.search(owner, "quarterly", 10).unwrap().len(), 1);
    // `reindex` refuses the same way.
    let out = run_portal(cwd.path(), &["reindex"]).await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("nothing was changed"));

    // With the portal stopped, the same command does all of it, index included.
    let dir = std::mem::replace(&mut portal.dir, tempfile::tempdir().unwrap());
    drop(search);
    portal.stop().await;
    let out = run_portal(cwd.path(), &["maintain"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Removed 1 documents"));
    let db = rusqlite::Connection::open(dir.path().join("data/portal.db")).unwrap();
    let count = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("SELECT count(*) FROM documents"), 0);
    assert_eq!(
        count("SELECT count(*) FROM audit_log WHERE event = 'document_removed'"),
        1
    );
    assert!(blobs().len() < blobs_before.len(), "the file went too");
    let index = portal::infra::search::SearchIndex::open(&dir.path().join("data/search")).unwrap();
    assert!(index.search(owner, "quarterly", 10).unwrap().is_empty());
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn audit_export_is_json_lines_with_logs_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    // No portal.toml at all: the default case, whose warning used to reach stdout.
    let add = portal_binary(dir.path())
        .args([
            "client",
            "add",
            "--name",
            "Jane",
            "--email",
            "jane@example.com",
        ])
        .output()
        .unwrap();
    assert!(add.status.success(), "{}", text(&add.stderr));
    let out = portal_binary(dir.path())
        .args(["audit", "export"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{stdout}"));
        assert!(entry.is_object());
    }
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not found; using defaults"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "no colour when not a terminal");
}

#[test]
fn log_colour_only_on_a_terminal_and_without_no_color() {
    let dir = tempfile::tempdir().unwrap();
    // `script` runs the command on a pseudo-terminal, as an admin's shell would.
    let on_terminal = |no_color: Option<&str>| {
        let bin = portal_binary(dir.path()).get_program().to_owned();
        let mut c = Command::new("script");
        c.current_dir(dir.path())
            .env_remove("PORTAL_CONFIG")
            .env_remove("NO_COLOR")
            .args([
                "-qec",
                &format!("{} mail status", bin.to_string_lossy()),
                "/dev/null",
            ]);
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        text(&c.output().unwrap().stdout)
    };
    let coloured = on_terminal(None);
    assert!(
        coloured.contains("not found; using defaults") && coloured.contains('\u{1b}'),
        "{coloured}"
    );
    for value in ["1", ""] {
        let plain = on_terminal(Some(value));
        assert!(
            plain.contains("not found; using defaults") && !plain.contains('\u{1b}'),
            "{plain}"
        );
    }
}

#[test]
fn a_bad_value_gives_a_plain_message_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("portal.toml"),
        "[retention]\nremove_saved_uploads_after_days = -1\n",
    )
    .unwrap();
    let out = portal_binary(dir.path())
        .args(["mail", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out.stderr);
    assert!(
        said.contains("`retention.remove_saved_uploads_after_days` (in portal.toml)")
            && said.contains("expected a whole number (0 or more), found -1"),
        "{said}"
    );
    for internal in ["default.", "BTreeMap", "src/", "u32"] {
        assert!(!said.contains(internal), "{internal} in {said}");
    }
    std::fs::remove_file(dir.path().join("portal.toml")).unwrap();
    let out = portal_binary(dir.path())
        .env("PORTAL_RETENTION__UNPUBLISH_AFTER_DAYS", "0.5")
        .args(["mail", "status"])
        .output()
        .unwrap();
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        said.contains(
            "`retention.unpublish_after_days` (from PORTAL_RETENTION__UNPUBLISH_AFTER_DAYS)"
        ) && said.contains("found 0.5"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_test_shows_the_conversation_or_the_step_that_failed() {
    let smtp = Smtp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let quick = "timeout_seconds = 1\nsend_timeout_seconds = 2\n";
    write_config(dir.path(), &data, Some(smtp.port), quick);
    let out = run_portal(dir.path(), &["mail", "test", "--to", "anna@example.com"]).await;
    let said = text(&out.stdout);
    assert!(out.status.success(), "{said}{}", text(&out.stderr));
    for step in [
        "greeting",
        "EHLO",
        "MAIL FROM",
        "RCPT TO",
        "DATA",
        "accepted",
    ] {
        assert!(said.contains(step), "{step} not in {said}");
    }
    smtp.wait_nth("anna@example.com", "Test message", 0).await;

    smtp.set_hung(true);
    let started = Instant::now();
    let out = run_portal(dir.path(), &["mail", "test", "--to", "anna@example.com"]).await;
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(8));
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(
        said.contains("no answer within 1 s while waiting for the server's greeting"),
        "{said}"
    );

    write_config(dir.path(), &data, Some(free_port()), quick);
    let out = run_portal(dir.path(), &["mail", "test", "--to", "anna@example.com"]).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("connecting to the server failed"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn staff_see_the_last_delivery_error_and_the_oldest_pending_mail() {
    let portal = TestPortal::start_with(|c| c.mail.retry_delays_seconds = vec![600]).await;
    let staff = staff_browser(&portal).await;
    staff
        .get("/staff")
        .await
        .expect("Mail delivery")
        .expect("No mail is waiting");
    portal.smtp.set_down(true);
    invite_and_fail_once(&portal, "Jane Doe", "jane@example.com").await;
    let page = staff.get("/staff").await;
    page.expect("1 message is waiting to be sent; the oldest for")
        .expect("Last delivery error")
        .expect("421 test server unavailable");
    portal.stop().await;
}

/// A server that follows `script` (its greeting, then one reply per line it
/// reads) and then stops answering while keeping the connection open.
async fn stalling_server(script: &'static [&'static str]) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = tokio::io::BufReader::new(read).lines();
                let mut replies = script.iter();
                if let Some(greeting) = replies.next() {
                    let _ = write.write_all(greeting.as_bytes()).await;
                }
                while let Ok(Some(_)) = lines.next_line().await {
                    if let Some(reply) = replies.next() {
                        let _ = write.write_all(reply.as_bytes()).await;
                    }
                }
                // Binary (a TLS handshake) or the end: hold the connection, silent.
                std::future::pending::<()>().await;
                drop(write);
            });
        }
    });
    port
}

async fn send_to(port: u16, security: SmtpSecurity) -> portal::infra::smtp::SmtpError {
    let server =
        SmtpServer::new("localhost", port, security, None, Duration::from_secs(1)).unwrap();
    let email = lettre::Message::builder()
        .from("portal@example.com".parse().unwrap())
        .to("jane@example.com".parse().unwrap())
        .subject("hi")
        .body("hello".to_string())
        .unwrap();
    let started = Instant::now();
    let err = server
        .send(
            email.envelope(),
            &email.formatted(),
            tokio::time::Instant::now() + Duration::from_secs(5),
            &mut |_, _| {},
        )
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    err
}

#[tokio::test]
async fn every_step_of_the_conversation_has_a_time_limit() {
    const EHLO: &str = "250-localhost\r\n250 STARTTLS\r\n";
    let cases: [(&'static [&'static str], SmtpSecurity, Step); 5] = [
        (&[], SmtpSecurity::None, Step::Greeting),
        (&["220 hi\r\n"], SmtpSecurity::None, Step::Hello),
        // A stalled TLS handshake, after STARTTLS or from the first byte.
        (
            &["220 hi\r\n", EHLO, "220 go ahead\r\n"],
            SmtpSecurity::Starttls,
            Step::StartTls,
        ),
        (&[], SmtpSecurity::Tls, Step::ConnectTls),
        (
            &[
                "220 hi\r\n",
                "250 localhost\r\n",
                "250 ok\r\n",
                "250 ok\r\n",
                "354 go ahead\r\n",
            ],
            SmtpSecurity::None,
            Step::Message,
        ),
    ];
    for (script, security, step) in cases {
        let port = stalling_server(script).await;
        let err = send_to(port, security).await;
        assert_eq!(err.step, step, "{err}");
        assert!(err.to_string().starts_with("no answer within 1 s"), "{err}");
    }
}
