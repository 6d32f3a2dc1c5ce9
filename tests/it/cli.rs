//! The `portal` command as an admin runs it (O1, B1).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::{portal_binary as portal, spawn_serve};

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
    let out = portal(dir.path())
        .args([
            "client",
            "add",
            "--name",
            "Jane Doe",
            "--email",
            "jane@example.com",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    let mut add = portal(dir.path())
        .args([
            "staff",
            "add",
            "--email",
            "ann@firm.example",
            "--name",
            "Ann",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery staple\n")
        .unwrap();
    assert!(add.wait_with_output().unwrap().status.success());
    let mut weak = portal(dir.path())
        .args([
            "staff",
            "add",
            "--email",
            "bob@firm.example",
            "--name",
            "Bob",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    weak.stdin.take().unwrap().write_all(b"short\n").unwrap();
    let weak = weak.wait_with_output().unwrap();
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
