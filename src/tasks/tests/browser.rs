//! The autosave script in headless Chromium at phone size, with the test kind:
//! an answer that reveals a question shows it without a reload, what is typed
//! is on the server about a second later, and a reload finds it. Needs
//! Debian's `chromium` and `chromium-driver` packages, like the integration
//! tests' browser tests.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::world;
use crate::accounts::session::Subject;
use crate::tasks::kinds::Value;

/// chromedriver in its own process group, killed with any Chromium it started;
/// the browser profile's directory goes with it.
struct Chromedriver(Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

async fn phone() -> (Chromedriver, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new("/usr/bin/chromedriver");
    cmd.arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let profile = tempfile::tempdir().unwrap();
    let dir = profile.path().display().to_string();
    let spawned = cmd
        .spawn()
        .expect("chromedriver (apt-get install chromium-driver)");
    let driver = Chromedriver(spawned, profile);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", format!("--user-data-dir={dir}")],
            "mobileEmulation": { "deviceMetrics": { "width": 375, "height": 812, "pixelRatio": 2.0, "mobile": true, "touch": true } },
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        if let Ok(c) = ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            return (driver, c);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn until(c: &Client, script: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.execute(script, Vec::new()).await.unwrap() != json!(true) {
        assert!(
            Instant::now() < deadline,
            "{what}: {}",
            c.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// One story, as the integration tests tell theirs.
#[allow(clippy::too_many_lines)]
#[tokio::test]
async fn every_change_is_saved_within_a_second_and_a_reload_keeps_it() {
    let w = world("quiz-browser").await;
    let served = w.serve().await;
    let base = served.base.clone();
    let task = w.assign().await;
    let token = w.session(Subject::Client(w.client.id)).await;
    let (_driver, c) = phone().await;
    c.goto(&format!("{base}/help")).await.unwrap();
    let set = format!("document.cookie = 'portal_session={token}; path=/'; return true;");
    c.execute(&set, Vec::new()).await.unwrap();
    c.goto(&format!("{base}/tasks/{}", task.public_id))
        .await
        .unwrap();
    until(
        &c,
        "return document.getElementById('f-spouse').hidden === true",
        "spouse starts hidden",
    )
    .await;

    // Yes reveals the spouse question without a reload.
    click(&c, "input[name='v:married'][value='yes']").await;
    until(
        &c,
        "return document.getElementById('f-spouse').hidden === false",
        "spouse shown",
    )
    .await;
    let typed = Instant::now();
    c.find(Locator::Css("#i-spouse"))
        .await
        .unwrap()
        .send_keys("Sam")
        .await
        .unwrap();
    loop {
        if w.value(&task, "spouse").await == Some(Value::Text("Sam".into())) {
            break;
        }
        assert!(
            typed.elapsed() < Duration::from_secs(3),
            "saved about a second after typing stops"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    until(
        &c,
        "return document.querySelector('#s-main .save-state').textContent === 'Saved'",
        "Saved shown",
    )
    .await;
    until(
        &c,
        "return document.getElementById('task-progress-text').textContent === '2 of 3 done'",
        "progress",
    )
    .await;

    // No hides it again; after a reload the answers are there, the hidden one kept.
    click(&c, "input[name='v:married'][value='no']").await;
    until(
        &c,
        "return document.getElementById('f-spouse').hidden === true",
        "spouse hidden again",
    )
    .await;
    c.refresh().await.unwrap();
    until(
        &c,
        "return document.querySelector(\"input[name='v:married'][value='no']\").checked",
        "kept after reload",
    )
    .await;
    assert_eq!(
        w.value(&task, "spouse").await,
        Some(Value::Text("Sam".into())),
        "hidden, not destroyed"
    );

    c.close().await.unwrap();
    served.shut_down().await;
}
