//! End-to-end in a real headless Chromium (driven through chromedriver) at phone
//! size: sign up as an invited taxpayer, sign in, sign out, and sign in again from
//! the now-trusted browser; and on the Documents pages send files, search, preview
//! a PDF with pdf.js and read the firm's message.
//!
//! Needs Debian's `chromium` and `chromium-driver` packages.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::common::{PIN, TestPortal};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long any one page may take to appear after a click.
const STEP: Duration = Duration::from_secs(15);
/// The taxpayer both tests sign in as.
const EMAIL: &str = "jane@example.com";

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
        self.browser_sized(390, 844).await
    }

    /// A browser emulating a phone screen of `width` × `height` CSS pixels.
    async fn browser_sized(&self, width: u32, height: u32) -> Client {
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
                    format!("--window-size={width},{height}"),
                ],
                // Headless Chromium will not make a window narrower than 500 px,
                // so emulate the phone's screen for a true 390 px viewport.
                "mobileEmulation": {
                    "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2.0, "mobile": true, "touch": true },
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
async fn click_then(c: &Client, label: &str, next: &str) -> Element {
    let xpath = button(label);
    c.find(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("no button {label:?}: {e}"))
        .click()
        .await
        .unwrap();
    wait_for(c, next).await
}

async fn wait_for(c: &Client, css: &str) -> Element {
    match c
        .wait()
        .at_most(STEP)
        .every(Duration::from_millis(50))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(e) => e,
        Err(e) => panic!("waiting for {css:?}: {e}; {}", page_dump(c).await),
    }
}

/// "page <url>:" and the page's source, for a failure message.
async fn page_dump(c: &Client) -> String {
    let url = c
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    let src = c.source().await.unwrap_or_default();
    format!("page {url}:\n{src}")
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

fn screenshot_path(file: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("screenshots").join(file)
}

/// Saves a picture of the page for a human to look at, as
/// `target/screenshots/<file>`; failure to take or write it does not matter.
async fn save_screenshot(c: &Client, file: &str) {
    let shot = screenshot_path(file);
    match c.screenshot().await {
        Ok(png) => {
            let _ = std::fs::create_dir_all(shot.parent().unwrap());
            if std::fs::write(&shot, png).is_ok() {
                eprintln!("screenshot: {}", shot.display());
            }
        }
        Err(e) => eprintln!("no screenshot: {e}"),
    }
}

/// Polls (every 50 ms, for at most [`STEP`]) until the JavaScript expression `js`
/// is `true` in the page, then returns. `what` says what is awaited, for the
/// failure message, which also shows the page as it was at the end.
async fn wait_until(c: &Client, what: &str, js: &str) {
    let script = format!("return !!({js});");
    let deadline = tokio::time::Instant::now() + STEP;
    let mut last_err = String::new();
    loop {
        match c.execute(&script, vec![]).await {
            Ok(serde_json::Value::Bool(true)) => return,
            Ok(_) => {}
            // A navigation in progress can make the script fail; try again.
            Err(e) => last_err = e.to_string(),
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "timed out after {STEP:?} waiting until {what} ({js}); last error: {last_err:?}; {}",
                page_dump(c).await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Signs in from this browser, which has not been used by `email` before (so
/// email, PIN, then the emailed access code), and waits for the home page.
async fn sign_in_new_browser(c: &Client, portal: &TestPortal, email: &str, pin: &str) {
    let mut seen = portal.smtp.matching(email, "access code");
    c.goto(&format!("{}/signin", portal.url)).await.unwrap();
    wait_for(c, "#email").await;
    type_into(c, "#email", email).await;
    click_then(c, "Continue", "#pin").await;
    assert_eq!(path(c).await, "/signin/pin");
    type_into(c, "#pin", pin).await;
    click_then(c, "Continue", "#code").await;
    assert_eq!(path(c).await, "/signin/code");
    let code = portal.smtp.next_code(email, &mut seen).await;
    type_into(c, "#code", &code).await;
    click_then(c, "Confirm", "details.menu").await;
    assert_eq!(path(c).await, "/");
}

#[tokio::test]
async fn browser_sign_up_and_sign_in_as_a_taxpayer() {
    let (email, pin) = (EMAIL, PIN);
    let driver = Driver::start().await;
    let portal = TestPortal::start().await;
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
    save_screenshot(&c, "home-phone.png").await;

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

/// The names of the documents the Documents page lists.
async fn listed_documents(c: &Client) -> Vec<String> {
    let names = c
        .execute(
            "return Array.from(document.querySelectorAll('li.doc a.doc-name'), a => a.textContent.trim());",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(names).unwrap()
}

/// XPath of the Documents page's row for the document named `name`.
fn document_row(name: &str) -> String {
    format!(
        "//li[contains(concat(' ', @class, ' '), ' doc ')]\
         [.//a[contains(concat(' ', @class, ' '), ' doc-name ') and normalize-space()='{name}']]"
    )
}

async fn find_xpath(c: &Client, xpath: &str) -> Element {
    c.find(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("nothing at {xpath}: {e}"))
}

/// The element `locator` finds inside `parent`.
async fn inside(parent: &Element, locator: Locator<'_>) -> Element {
    parent
        .find(locator)
        .await
        .unwrap_or_else(|e| panic!("nothing at {locator:?}: {e}"))
}

/// Clicks `target`, then waits until `js` holds (see [`wait_until`]).
async fn click_until(c: &Client, target: Element, what: &str, js: &str) {
    target.click().await.unwrap();
    wait_until(c, what, js).await;
}

/// The open message dialog of the Documents page.
const DIALOG: &str = "dialog.message-dialog[open]";

/// Clicks `target`, then waits until an element `css` is on the page (`shown`)
/// or is gone from it.
async fn click_until_shown(c: &Client, target: Element, css: &str, shown: bool) {
    let (what, test) = if shown {
        ("is shown", "!==")
    } else {
        ("is gone", "===")
    };
    let js = format!("document.querySelector('{css}') {test} null");
    click_until(c, target, &format!("{css} {what}"), &js).await;
}

#[tokio::test]
async fn browser_documents_upload_search_and_preview() {
    let driver = Driver::start().await;
    let portal = TestPortal::start().await;
    // The account is made over plain HTTP; Chromium signs in on its own below.
    portal.client("Jane Doe", EMAIL, PIN).await;

    // Staff publish a PDF with a message.
    let staff = crate::common::staff_browser(&portal).await;
    staff
        .publish(
            &portal.client_id(EMAIL),
            "2025 / Returns",
            "Please review",
            &[(
                "Form 1040.pdf",
                crate::common::pdf_with_text("Depreciation schedule rental"),
            )],
        )
        .await
        .expect("The documents were published");

    let c = driver.browser().await;
    sign_in_new_browser(&c, &portal, EMAIL, PIN).await;

    // Send two files from disk through the file picker.
    let files = tempfile::tempdir().unwrap();
    let uploads = ["W-2 Acme Corp.txt", "Receipts 2025.csv"];
    let paths: Vec<String> = uploads
        .iter()
        .zip([
            &b"Wages 52,000\n"[..],
            &b"date,amount\n2025-03-01,120.00\n"[..],
        ])
        .map(|(name, bytes)| {
            let p = files.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p.to_str().unwrap().to_string()
        })
        .collect();
    c.goto(&format!("{}/documents/send", portal.url))
        .await
        .unwrap();
    // The picker reads the files (and empties itself) when chromedriver sets them.
    wait_for(&c, "#files")
        .await
        .send_keys(&paths.join("\n"))
        .await
        .unwrap();
    wait_until(
        &c,
        "both files are listed as ready",
        "document.querySelectorAll('#upload-list li.upload-row[data-state=ready]').length === 2",
    )
    .await;
    save_screenshot(&c, "send-files-phone.png").await;
    // A mark that the navigation after sending wipes out.
    c.execute("window.beforeReload = true;", vec![])
        .await
        .unwrap();
    let start = c.find(Locator::Css("#start-upload")).await.unwrap();
    click_until(
        &c,
        start,
        "#upload-status says all files were sent",
        "document.getElementById('upload-status').textContent === \
         'All files sent. The firm has been notified.'",
    )
    .await;
    let states = c
        .execute(
            "return Array.from(document.querySelectorAll('#upload-list li.upload-row'), li => li.dataset.state);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(states, json!(["done", "done"]));
    // upload.js then takes the taxpayer to Documents, where the files are listed.
    wait_until(
        &c,
        "the browser moved on to Documents",
        "!window.beforeReload && document.readyState === 'complete' \
         && location.pathname === '/documents' && document.getElementById('q') !== null",
    )
    .await;
    save_screenshot(&c, "documents-phone.png").await;
    let listed = listed_documents(&c).await;
    for name in uploads.iter().chain(&["Form 1040.pdf"]) {
        assert!(
            listed.iter().any(|l| l == name),
            "{name:?} is not listed: {listed:?}"
        );
    }

    // Search for a word inside the PDF.
    type_into(&c, "#q", "depreciation").await;
    let search = find_xpath(
        &c,
        "//form[@role='search']//button[normalize-space()='Search']",
    );
    click_until(
        &c,
        search.await,
        "the search results are shown",
        "new URLSearchParams(location.search).get('q') === 'depreciation' \
         && document.readyState === 'complete' && document.querySelector('#q') !== null",
    )
    .await;
    expect_text(&text_of(&c).await, "1 document found");
    assert_eq!(listed_documents(&c).await, ["Form 1040.pdf"]);

    // Preview it: pdf.js loads it, lists its bookmark and draws the page.
    let row = document_row("Form 1040.pdf");
    let view = find_xpath(&c, &format!("{row}//a[normalize-space()='View']")).await;
    click_until(
        &c,
        view,
        "the PDF viewer shows 1 page",
        "document.getElementById('page-count')?.textContent === '1'",
    )
    .await;
    assert!(path(&c).await.ends_with("/view"), "{}", path(&c).await);
    wait_until(
        &c,
        "the outline lists the bookmark Summary",
        "Array.from(document.querySelectorAll('#outline a'), a => a.textContent).includes('Summary')",
    )
    .await;
    // Some dark pixels on the canvas: the page's text has been drawn.
    wait_until(
        &c,
        "the page is drawn on the canvas",
        "(() => { const cv = document.getElementById('pdf-canvas'); \
           const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data; \
           for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && d[i] < 128) return true; \
           return false; })()",
    )
    .await;
    let error = c.find(Locator::Css("#pdf-error")).await.unwrap();
    assert!(
        !error.is_displayed().await.unwrap(),
        "the viewer shows an error: {:?}",
        error.prop("textContent").await.unwrap()
    );
    save_screenshot(&c, "preview.png").await;

    // Back to the list: read the message from the More menu.
    let back = find_xpath(&c, "//a[normalize-space()='Back to Documents']").await;
    click_until(
        &c,
        back,
        "the Documents page is back",
        "location.pathname === '/documents' && document.readyState === 'complete' \
         && document.querySelector('li.doc') !== null",
    )
    .await;
    let menu = find_xpath(&c, &format!("{row}//details[contains(@class, 'more')]")).await;
    let summary = inside(&menu, Locator::Css("summary")).await;
    click_until_shown(&c, summary, "details.more[open]", true).await;
    let view_message = Locator::XPath(".//button[normalize-space()='View Message']");
    click_until_shown(&c, inside(&menu, view_message).await, DIALOG, true).await;
    let dialog = c.find(Locator::Css(DIALOG)).await.unwrap();
    let shown = dialog.text().await.unwrap();
    expect_text(&shown, "Message from CPA");
    expect_text(&shown, "Please review");
    let ok = inside(&dialog, Locator::XPath(".//button[normalize-space()='OK']")).await;
    click_until_shown(&c, ok, DIALOG, false).await;
    assert!(!dialog.is_displayed().await.unwrap());

    c.close().await.unwrap();
    drop(driver);
    portal.stop().await;
}

// ---------- tasks with the real example plugins ----------

/// The task `task` open in a signed-in phone browser (375 × 800).
async fn task_on_phone(driver: &Driver, portal: &TestPortal, task: &str) -> Client {
    let c = driver.browser_sized(375, 800).await;
    sign_in_new_browser(&c, portal, EMAIL, PIN).await;
    c.goto(&format!("{}/tasks/{task}", portal.url))
        .await
        .unwrap();
    wait_for(&c, "form.task-submit").await;
    let width = c
        .execute("return document.documentElement.scrollWidth;", vec![])
        .await
        .unwrap();
    assert!(
        width.as_u64().is_some_and(|w| w <= 375),
        "the task page is {width} px wide on a 375 px phone"
    );
    c
}

/// The input of question `field` (ids hold dots, so by attribute).
fn input(field: &str) -> String {
    format!("[id='i-{field}']")
}

#[tokio::test]
async fn browser_organizer_autosaves_keeps_answers_over_a_reload_and_submits() {
    use crate::tasks_plugins as tp;
    let driver = Driver::start().await;
    let (portal, jane_http, staff) = tp::portal_with_plugins(&tp::example_plugins()).await;
    let task = tp::assign(
        &staff,
        &portal.client_id(EMAIL),
        "organizer",
        "2025 organizer",
        &[("s:questionnaire", "Full 1040 organizer")],
    )
    .await;
    let c = task_on_phone(&driver, &portal, &task).await;
    let answer = |field: &str| {
        format!(
            "SELECT count(*) FROM task_answers WHERE field_id = '{field}' AND value LIKE '%Jane%'"
        )
    };

    // Typing is saved by the script, without pressing Save section.
    type_into(&c, &input("about.first-name"), "Jane").await;
    portal.eventually_i64(&answer("about.first-name"), 1).await;
    // A choice that reveals a section shows it without a reload.
    wait_until(
        &c,
        "the spouse section starts hidden",
        "document.getElementById('s-spouse').hidden",
    )
    .await;
    c.find(Locator::Css(
        "input[name='v:about.filing-status'][value='Married filing jointly']",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    wait_until(
        &c,
        "the spouse section shows",
        "!document.getElementById('s-spouse').hidden",
    )
    .await;
    type_into(&c, &input("spouse.first-name"), "Janet's husband").await;
    portal
        .eventually_i64(
            "SELECT count(*) FROM task_answers WHERE field_id = 'spouse.first-name' AND value LIKE '%husband%'",
            1,
        )
        .await;
    save_screenshot(&c, "organizer-phone.png").await;

    // A reload finds everything typed.
    c.refresh().await.unwrap();
    wait_for(&c, "form.task-submit").await;
    let kept = c
        .execute(
            "return [document.getElementById('i-about.first-name').value, \
             document.getElementById('i-spouse.first-name').value, \
             document.querySelector(\"input[name='v:about.filing-status'][value='Married filing jointly']\").checked];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(kept, json!(["Jane", "Janet's husband", true]));

    // The rest over plain HTTP, then Submit from the phone.
    tp::fill_required(&jane_http, &format!("/tasks/{task}")).await;
    c.refresh().await.unwrap();
    click_then(&c, "Submit", "p.notice").await;
    expect_text(
        &text_of(&c).await,
        "Completed: Organizer: Married filing jointly",
    );
    assert_eq!(
        portal.query_text(&format!(
            "SELECT state FROM tasks WHERE public_id = '{task}'"
        )),
        "completed"
    );
    portal.stop().await;
}

#[tokio::test]
async fn browser_gather_upload_against_an_item_with_the_file_input() {
    use crate::tasks_plugins as tp;
    let driver = Driver::start().await;
    let (portal, _jane, staff) = tp::portal_with_plugins(&tp::example_plugins()).await;
    let task = tp::assign(
        &staff,
        &portal.client_id(EMAIL),
        "gather",
        "Documents for 2025",
        &[
            ("s:documents", "W-2 (wages)"),
            ("s:documents", "1099-INT (interest)"),
        ],
    )
    .await;
    let c = task_on_phone(&driver, &portal, &task).await;
    let files = tempfile::tempdir().unwrap();
    let w2 = files.path().join("W-2 Acme.pdf");
    std::fs::write(&w2, crate::common::pdf_with_text("W-2 Acme")).unwrap();
    let picker = wait_for(&c, "[id='u-doc.w2']").await;
    let accept = picker.attr("accept").await.unwrap().unwrap_or_default();
    assert_eq!(accept, "image/*,.pdf");
    assert_eq!(
        picker.attr("capture").await.unwrap().as_deref(),
        Some("environment")
    );
    picker.send_keys(w2.to_str().unwrap()).await.unwrap();
    let send = find_xpath(
        &c,
        "//fieldset[@id='f-doc.w2']//button[normalize-space()='Send file']",
    )
    .await;
    send.click().await.unwrap();
    wait_until(
        &c,
        "the W-2 is listed with its item",
        "!!document.querySelector(\"[id='f-doc.w2'] ul.files\") && \
         document.querySelector(\"[id='f-doc.w2'] ul.files\").textContent.includes('W-2 Acme.pdf')",
    )
    .await;
    expect_text(&text_of(&c).await, "Your file was received.");
    save_screenshot(&c, "gather-phone.png").await;
    assert_eq!(
        portal.query_i64("SELECT count(*) FROM task_files WHERE field_id = 'doc.w2'"),
        1
    );
    c.goto(&format!("{}/documents", portal.url)).await.unwrap();
    wait_for(&c, "main").await;
    expect_text(&text_of(&c).await, "W-2 Acme.pdf");
    portal.stop().await;
}
