//! The `portal` command as an admin runs it (O1, B1).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};

use crate::common::{ADD_JANE, portal_binary as portal, spawn_serve, succeeded};

/// `portal staff add` with `password` on standard input.
fn add_staff(dir: &std::path::Path, email: &str, name: &str, password: &[u8]) -> Output {
    let mut add = portal(dir)
        .args([
            "staff",
            "add",
            "--email",
            email,
            "--name",
            name,
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(password).unwrap();
    add.wait_with_output().unwrap()
}

#[test]
fn admin_commands_and_serve_work_from_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.path().join("portal.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
             [security]\nargon2_memory_kib = 64\nargon2_iterations = 1\n"
        ),
    )
    .unwrap();

    // An invitation with no SMTP server lands in the outbox.
    succeeded(&portal(dir.path()).args(ADD_JANE).output().unwrap());
    let outbox: Vec<_> = std::fs::read_dir(dir.path().join("data/outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(outbox.len(), 1);
    assert!(
        std::fs::read_to_string(&outbox[0])
            .unwrap()
            .contains("jane@example.com")
    );

    // A staff member with a password from standard input; a weak one is refused.
    assert!(
        add_staff(
            dir.path(),
            "ann@firm.example",
            "Ann",
            b"correct horse battery staple\n"
        )
        .status
        .success()
    );
    let weak = add_staff(dir.path(), "bob@firm.example", "Bob", b"short\n");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 12 characters"));

    // An invalid value names its key and stops the program.
    let bad = portal(dir.path())
        .env("PORTAL_SERVER__LISTEN", "nowhere")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("server.listen"));

    // serve prints where it runs, answers, and stops cleanly on SIGTERM.
    let (mut server, first) = spawn_serve(dir.path());
    assert!(
        first.contains(&format!("http://127.0.0.1:{port}")),
        "{first}"
    );
    let health = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut reply = String::new();
        std::io::Read::read_to_string(&mut s, &mut reply)?;
        Ok(reply)
    });
    assert!(health.unwrap().starts_with("HTTP/1.1 200"));
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = server.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");

    // The audit log the commands wrote is intact.
    let verify = portal(dir.path())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&verify.stdout).contains("audit log intact"));
}

/// Collects everything a child process writes to stdout and stderr, without
/// colour codes.
fn collect_output(child: &mut std::process::Child) -> std::sync::Arc<std::sync::Mutex<String>> {
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let ansi = regex::Regex::new("\x1b\\[[0-9;]*m").unwrap();
    let streams: Vec<Box<dyn std::io::Read + Send>> = vec![
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    for stream in streams {
        let (log, ansi) = (log.clone(), ansi.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap();
                log.push_str(&ansi.replace_all(&line, ""));
                log.push('\n');
            }
        });
    }
    log
}

#[tokio::test]
async fn a_server_error_page_quotes_a_request_id_found_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    // Port 0: the server picks a free port and logs it (no race with other tests).
    std::fs::write(
        dir.path().join("portal.toml"),
        "[server]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut server = portal(dir.path())
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = collect_output(&mut server);
    // Stopped even when an assertion below fails.
    let _server = KillOnDrop(server);
    let serving = regex::Regex::new(r"serving on (http://127\.0\.0\.1:\d+)").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let url = loop {
        if let Some(c) = serving.captures(&log.lock().unwrap()) {
            break c[1].to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not start:\n{}",
            log.lock().unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let browser = crate::common::Browser::new(&url);
    // Break the database under the running server: signing in now fails inside.
    let db = rusqlite::Connection::open(dir.path().join("data/portal.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db.execute("ALTER TABLE auth_flows RENAME TO auth_flows_gone", [])
        .unwrap();

    let page = browser.enter_email("jane@example.com").await;
    assert_eq!(page.status, 500, "{}", page.body);
    let id = regex::Regex::new(r"reference: <strong>([A-Z0-9]{12})</strong>")
        .unwrap()
        .captures(&page.body)
        .map(|c| c[1].to_string())
        .unwrap_or_else(|| panic!("no reference on the error page:\n{}", page.body));
    let logged = |what: &str| {
        log.lock()
            .unwrap()
            .lines()
            .any(|l| l.contains(&id) && l.contains(what))
    };
    while !(logged("request failed") && logged("status=500")) {
        assert!(
            std::time::Instant::now() < deadline,
            "request {id} is not in the log:\n{}",
            log.lock().unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // 4xx pages carry no reference (nothing went wrong on the server).
    let missing = browser.get("/no-such-page").await;
    assert_eq!(missing.status, 404);
    assert!(!missing.body.contains("reference"));
}

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A theme directory holding `files` (path under it, source).
fn theme_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, source) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, source).unwrap();
    }
    dir
}

#[test]
fn theme_check_passes_the_default_theme_and_names_each_broken_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let clean = portal(dir.path())
        .args(["theme", "check"])
        .output()
        .unwrap();
    let stdout = succeeded(&clean);
    assert!(stdout.contains("No problems found"), "{stdout}");
    assert!(
        !dir.path().join("data").exists(),
        "checking a theme needs no data directory"
    );

    let theme = theme_dir(&[
        // A syntax error in a staff page (in a subdirectory).
        (
            "templates/staff/home.html",
            "{% extends \"default/staff/home.html\" %}\n{% block content %}\n{% for c in clients %}\n{% endblock %}\n",
        ),
        // A misspelt variable, only visible when the page is rendered.
        (
            "templates/signin.html",
            "{% extends \"default/signin.html\" %}\n{% block content %}\n<p>Welcome to {{ firm.nmae }}</p>\n{% endblock %}\n",
        ),
        // An email whose first line is not the subject.
        (
            "templates/email/invitation.txt",
            "Hello {{ name }},\n\n{{ link }}\n",
        ),
        // A page that includes a partial the theme forgot to ship.
        (
            "templates/home.html",
            "{% extends \"default/home.html\" %}\n{% block content %}\n\n{% include \"partials/welcome.html\" %}\n{% endblock %}\n",
        ),
    ]);
    let out = portal(dir.path())
        .args(["theme", "check", "--dir"])
        .arg(theme.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let templates = theme.path().join("templates");
    for (file, line) in [
        ("staff/home.html", 4),
        ("signin.html", 3),
        ("email/invitation.txt", 1),
        ("home.html", 4),
    ] {
        let place = format!("{}, line {line}:", templates.join(file).display());
        assert!(stdout.contains(&place), "{place} not in:\n{stdout}");
    }
    assert!(stdout.contains("firm.nmae"), "{stdout}");
    assert!(stdout.contains("Subject:"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("4 problems found"));

    let missing = portal(dir.path())
        .args(["theme", "check", "--dir", "no-such-theme"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-theme is not a directory"));
}

#[test]
fn a_broken_theme_override_stops_start_up_naming_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let theme = theme_dir(&[
        (
            "templates/signin.html",
            "{% extends \"default/signin.html\" %}\n{% block content %}\n{% if error %}\n{% endblock %}\n",
        ),
        ("templates/partials/footer.html", "<p>{{ firm.name }</p>\n"),
    ]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = portal(dir.path())
        .arg("serve")
        .env("PORTAL_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("PORTAL_THEME__DIR", theme.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = collect_output(&mut server);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            server.kill().unwrap();
            panic!(
                "serve started with a broken theme:\n{}",
                output.lock().unwrap()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success());
    // The output threads finish once the process has exited.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let output = output.lock().unwrap().clone();
    let templates = theme.path().join("templates");
    for (file, line) in [("signin.html", 4), ("partials/footer.html", 1)] {
        let place = format!("{}, line {line}:", templates.join(file).display());
        assert!(output.contains(&place), "{place} not in:\n{output}");
    }
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(
        !dir.path().join("data").exists(),
        "the theme is checked before the data directory is touched"
    );
}
