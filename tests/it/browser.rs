//! End-to-end in a real headless Chromium (driven through chromedriver) at phone
//! size: sign up as an invited taxpayer, sign in, sign out, and sign in again from
//! the now-trusted browser.
//!
//! Needs Debian's `chromium` and `chromium-driver` packages.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::common::TestPortal;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long any one page may take to appear after a click.
const STEP: Duration = Duration::from_secs(15);

/// A running chromedriver (in its own process group, so the Chromium it starts
/// goes away with it even if the test panics) and the browser's profile directory.
struct Driver {
    child: Child,
    url: String,
    log: PathBuf,
    profile: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Driver {
        for (path, what) in [(CHROMEDRIVER, "chromedriver"), (CHROMIUM, "chromium")] {
            assert!(
                Path::new(path).exists(),
                "{path} ({what}) is missing; the browser test needs it. Install it with: \
                 apt-get install -y chromium chromium-driver"
            );
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("chromedriver.log");
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let mut driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            profile: tempfile::tempdir().unwrap(),
            _dir: dir,
        };
        driver.wait_ready().await;
        driver
    }

    /// Polls `/status` until chromedriver says it is ready (at most ~10 s).
    async fn wait_ready(&mut self) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let status = format!("{}/status", self.url);
        let mut last = String::new();
        for _ in 0..100 {
            if let Some(exit) = self.child.try_wait().unwrap() {
                panic!(
                    "chromedriver exited early ({exit}); log:\n{}",
                    self.log_text()
                );
            }
            match http.get(&status).send().await {
                Ok(resp) => {
                    let body = resp.text().await.unwrap_or_default();
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    if v["value"]["ready"] == json!(true) {
                        return;
                    }
                    last = body;
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "chromedriver at {status} not ready after 10 s (last: {last}); log:\n{}",
            self.log_text()
        );
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", self.profile.path().display()),
                    "--window-size=390,844",
                ],
                // Headless Chromium will not make a window narrower than 500 px,
                // so emulate the phone's screen for a true 390 px viewport.
                "mobileEmulation": {
                    "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 2.0, "mobile": true, "touch": true },
                },
            }),
        );
        // chromedriver speaks plain HTTP on loopback: no TLS needed.
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start Chromium through chromedriver: {e}; log:\n{}",
                    self.log_text()
                )
            })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and any Chromium it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn button(label: &str) -> String {
    format!("//button[normalize-space()='{label}']")
}

/// Clicks the submit button labelled `label`, then waits for the next page to
/// show the element `next` (CSS) and returns it.
async fn click_then(c: &Client, label: &str, next: &str) -> fantoccini::elements::Element {
    let xpath = button(label);
    c.find(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("no button {label:?}: {e}"))
        .click()
        .await
        .unwrap();
    wait_for(c, next).await
}

async fn wait_for(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(STEP)
        .every(Duration::from_millis(50))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(e) => e,
        Err(e) => {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let src = c.source().await.unwrap_or_default();
            panic!("waiting for {css:?}: {e}; page {url}:\n{src}");
        }
    }
}

async fn type_into(c: &Client, css: &str, text: &str) {
    let field = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no field {css}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn text_of(c: &Client) -> String {
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[track_caller]
fn expect_text(body: &str, want: &str) {
    assert!(
        body.contains(want),
        "expected {want:?} on the page:\n{body}"
    );
}

async fn path(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_string()
}

fn screenshot_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("screenshots").join("home-phone.png")
}

#[tokio::test]
async fn browser_sign_up_and_sign_in_as_a_taxpayer() {
    let driver = Driver::start().await;
    let portal = TestPortal::start().await;
    let email = "jane@example.com";
    let pin = "482913";
    portal.invite("Jane Doe", email).await;
    let mut seen = portal.smtp.matching(email, "access code");

    let c = driver.browser().await;

    // Sign up: name and email, then the emailed code, then a PIN.
    c.goto(&format!("{}/signup", portal.url)).await.unwrap();
    wait_for(&c, "#name").await;
    type_into(&c, "#name", "Jane Doe").await;
    type_into(&c, "#email", email).await;
    click_then(&c, "Verify your email", "#code").await;
    let code = portal.smtp.next_code(email, &mut seen).await;
    type_into(&c, "#code", &code).await;
    click_then(&c, "Confirm", "#confirm").await;
    type_into(&c, "#pin", pin).await;
    type_into(&c, "#confirm", pin).await;
    click_then(&c, "Create Account", ".notice").await;
    expect_text(&text_of(&c).await, "Your account is ready");
    assert_eq!(path(&c).await, "/signin");

    // Sign in from this (new) browser: email (prefilled), PIN, code.
    let prefilled = c
        .find(Locator::Css("#email"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(
        prefilled.as_deref(),
        Some(email),
        "the sign-in email should be prefilled"
    );
    click_then(&c, "Continue", "#pin").await;
    assert_eq!(path(&c).await, "/signin/pin");
    type_into(&c, "#pin", pin).await;
    click_then(&c, "Continue", "#code").await;
    let code = portal.smtp.next_code(email, &mut seen).await;
    type_into(&c, "#code", &code).await;
    click_then(&c, "Confirm", "details.menu").await;
    assert_eq!(path(&c).await, "/");
    let home = text_of(&c).await;
    expect_text(&home, "Welcome, Jane Doe");
    expect_text(&home, "Smith & Lee CPAs");

    // At phone width nothing should need sideways scrolling.
    let widths = c
        .execute(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
            vec![],
        )
        .await
        .unwrap();
    let (scroll, client) = (widths[0].as_i64().unwrap(), widths[1].as_i64().unwrap());
    assert!(
        scroll <= client,
        "the home page scrolls sideways on a phone: {scroll}px wide in a {client}px viewport"
    );

    // A picture for a human to look at; failure to write it does not matter.
    let shot = screenshot_path();
    match c.screenshot().await {
        Ok(png) => {
            let _ = std::fs::create_dir_all(shot.parent().unwrap());
            if std::fs::write(&shot, png).is_ok() {
                eprintln!("screenshot: {}", shot.display());
            }
        }
        Err(e) => eprintln!("no screenshot: {e}"),
    }

    // Sign out from the account menu.
    let summary = c
        .find(Locator::Css("details.menu > summary"))
        .await
        .unwrap();
    expect_text(&summary.text().await.unwrap(), "Jane Doe");
    summary.click().await.unwrap();
    click_then(&c, "Sign Out", ".notice").await;
    assert_eq!(path(&c).await, "/signin");
    expect_text(&text_of(&c).await, "You have signed out");

    // Sign in again: this browser is trusted now, so no PIN, straight to the code.
    type_into(&c, "#email", email).await;
    click_then(&c, "Continue", "#code").await;
    assert_eq!(
        path(&c).await,
        "/signin/code",
        "a trusted browser should skip the PIN"
    );
    let code = portal.smtp.next_code(email, &mut seen).await;
    type_into(&c, "#code", &code).await;
    click_then(&c, "Confirm", "details.menu").await;
    assert_eq!(path(&c).await, "/");
    expect_text(&text_of(&c).await, "Welcome, Jane Doe");

    c.close().await.unwrap();
    drop(driver);
    portal.stop().await;
}
