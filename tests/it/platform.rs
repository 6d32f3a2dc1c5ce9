//! The running portal as an admin sees it: headers, mail delivery, themes, health.

use crate::common::TestPortal;

#[tokio::test]
async fn pages_carry_strict_security_headers() {
    let portal = TestPortal::start().await;
    let resp = reqwest::get(format!("{}/signin", portal.url))
        .await
        .unwrap();
    let h = resp.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe-inline")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert_eq!(
        reqwest::get(format!("{}/healthz", portal.url))
            .await
            .unwrap()
            .status(),
        200
    );
    let missing = reqwest::get(format!("{}/no/such/page", portal.url))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(
        missing
            .text()
            .await
            .unwrap()
            .contains("We could not find that page")
    );
    portal.stop().await;
}

#[tokio::test]
async fn mail_survives_an_smtp_outage() {
    let portal = TestPortal::start().await;
    portal.smtp.set_down(true);
    portal.invite_from("Jane Doe", "jane@example.com", "").await;
    // The first attempt (by this call or the server's worker) fails and is recorded.
    portal.state.mailer.deliver_due().await;
    portal
        .eventually_i64("SELECT attempts FROM mail_queue", 1)
        .await;
    assert_eq!(
        portal.query_i64(
            "SELECT count(*) FROM mail_queue WHERE sent_at IS NULL AND failed_at IS NULL"
        ),
        1,
        "kept for retry"
    );
    assert_eq!(portal.smtp.count_to("jane@example.com"), 0);

    portal.smtp.set_down(false);
    portal.deliver_invitation_now("", "jane@example.com").await;
    // Sent, and the body (which may hold a code) cleared.
    portal
        .eventually_i64(
            "SELECT count(*) FROM mail_queue WHERE sent_at IS NOT NULL AND text_body = ''",
            1,
        )
        .await;
    portal.stop().await;
}

#[tokio::test]
async fn without_smtp_mail_lands_in_the_outbox() {
    let portal = TestPortal::start_with(|c| c.mail.smtp_host = String::new()).await;
    portal.invite_from("Jane Doe", "jane@example.com", "").await;
    // The server's mail worker (or this call, whichever claims it first) writes it.
    portal.state.mailer.deliver_due().await;
    let outbox = portal.dir.path().join("data/outbox");
    let eml_files = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&outbox)
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while eml_files().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let files = eml_files();
    assert_eq!(files.len(), 1, "exactly one message, written once");
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert!(eml.contains("To: jane@example.com") && eml.contains("created a client portal"));
    portal.stop().await;
}

#[tokio::test]
async fn a_theme_directory_rebrands_the_portal() {
    let theme = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(theme.path().join("templates")).unwrap();
    std::fs::write(
        theme.path().join("templates/signin.html"),
        "{% extends \"default/signin.html\" %}{% block title %}Welcome to Acme{% endblock %}",
    )
    .unwrap();
    let dir = theme.path().to_string_lossy().into_owned();
    let portal = TestPortal::start_with(move |c| {
        c.theme.dir = dir;
        c.branding.primary_color = "#aa3300".parse().unwrap();
    })
    .await;
    let page = portal.browser().get("/signin").await;
    page.expect("<title>Welcome to Acme").expect("Continue");
    let css = reqwest::get(format!("{}/brand.css", portal.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(css.contains("--brand: #aa3300"));
    portal.stop().await;
}

#[tokio::test]
async fn over_https_cookies_are_host_prefixed_and_hsts_is_sent() {
    let portal = TestPortal::start_with(|c| {
        c.server.public_url = "https://portal.example.com".parse().unwrap()
    })
    .await;
    let resp = reqwest::get(format!("{}/signin", portal.url))
        .await
        .unwrap();
    let h = resp.headers();
    assert!(
        h["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("__Host-portal_browser=")
            && cookie.contains("Secure")
            && cookie.contains("Path=/"),
        "{cookie}"
    );
    portal.stop().await;
}

#[tokio::test]
async fn sign_in_events_are_in_the_audit_log() {
    let portal = TestPortal::start().await;
    let b = portal
        .client("Jane Doe", "jane@example.com", "482913")
        .await;
    b.post("/signout", &[]).await;
    let other = portal.browser();
    other.enter_email("jane@example.com").await;
    other.submit_pin("000001").await;
    for event in [
        "client_invited",
        "access_code_requested",
        "signup",
        "signin",
        "signout",
        "signin_failed",
    ] {
        let n = portal.query_i64(&format!(
            "SELECT count(*) FROM audit_log WHERE event = '{event}'"
        ));
        assert!(n >= 1, "no {event} entry in the audit log");
    }
    let detail = portal.query_text("SELECT detail FROM audit_log WHERE event = 'signin_failed'");
    assert_eq!(detail, "wrong PIN");
    // Codes and PINs never reach the audit log.
    let all = portal.query_text("SELECT group_concat(subject || detail, ' ') FROM audit_log");
    assert!(!all.contains("482913") && !all.contains("000001"));
    portal.stop().await;
}
