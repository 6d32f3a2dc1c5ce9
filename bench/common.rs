//! What the benchmarks share: the real `portal serve` process on loopback,
//! with a client signed in through the real pages.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const CLIENT_EMAIL: &str = "bench@example.com";

/// A running `portal serve` and a client's browser (cookies) signed in to it.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub http: reqwest::Client,
    /// The signed-in client's form token.
    pub csrf: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `portal` binary with `config`, logging warnings only.
pub fn portal(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portal"));
    c.arg("--config")
        .arg(config)
        .env("PORTAL_LOG__LEVEL", "warn");
    // The benchmarks' own settings are not the server's configuration.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PORTAL_BENCH_") {
            c.env_remove(name);
        }
    }
    c
}

/// The machine's load averages (1, 5, 15 minutes): other work on the machine
/// shows in the tail latencies, so the figures are read beside it.
pub fn load_average() -> String {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let figures: Vec<&str> = loadavg.split_whitespace().take(3).collect();
    format!("load average {}", figures.join(" "))
}

/// The access code in the newest of more than `after` mails in `outbox`, and the count.
fn latest_code(outbox: &Path, after: usize) -> (String, usize) {
    let re = regex::Regex::new(r"access code is: (\d{6})").unwrap();
    for _ in 0..500 {
        let mut files: Vec<PathBuf> = std::fs::read_dir(outbox)
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        if files.len() > after {
            let text = std::fs::read_to_string(files.last().unwrap())
                .unwrap()
                .replace("=\r\n", "");
            if let Some(c) = re.captures(&text) {
                return (c[1].to_string(), files.len());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no access code arrived in {}", outbox.display());
}

/// The CSRF token in a page's HTML.
pub fn csrf_in(body: &str) -> String {
    regex::Regex::new(r#"name="csrf" value="([^"]+)""#)
        .unwrap()
        .captures(body)
        .unwrap_or_else(|| panic!("no form token in {body}"))[1]
        .to_string()
}

/// The CSRF token in the page at `page_url`.
pub async fn csrf_on(http: &reqwest::Client, page_url: &str) -> String {
    let body = http
        .get(page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    csrf_in(&body)
}

/// A browser: an HTTP client that keeps cookies.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

impl Server {
    /// Starts `portal serve` on a free port, with `extra` appended to its
    /// portal.toml, and signs a client in through the real pages.
    pub async fn start(dir: &Path, extra: &str) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.join("data");
        let config = dir.join("portal.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
                 [storage]\ndata_dir = \"{}\"\n\
                 [security]\nargon2_memory_kib = 64\nargon2_iterations = 1\n{extra}",
                data.display()
            ),
        )
        .unwrap();
        let status = portal(&config)
            .args([
                "client",
                "add",
                "--name",
                "Bench Client",
                "--email",
                CLIENT_EMAIL,
            ])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let child = portal(&config)
            .arg("serve")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let http = browser();
        for _ in 0..1500 {
            if http.get(format!("{url}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sign_in_client(&http, &url, &data.join("outbox")).await;
        // Signing in gives the browser a new id, and forms a token bound to the session.
        let csrf = csrf_on(&http, &format!("{url}/documents/send")).await;
        Server {
            child,
            url,
            http,
            csrf,
        }
    }

    /// The portal's URL of `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

/// Signs the invited client up (access code by mail, PIN) and in again.
async fn sign_in_client(http: &reqwest::Client, url: &str, outbox: &Path) {
    let csrf = csrf_on(http, &format!("{url}/signup")).await;
    let seen = std::fs::read_dir(outbox).map(|d| d.count()).unwrap_or(0);
    let post = |path: &str, fields: Vec<(&str, String)>| {
        let mut form = fields;
        form.push(("csrf", csrf.clone()));
        http.post(format!("{url}{path}")).form(&form).send()
    };
    post(
        "/signup",
        vec![("name", "Bench".into()), ("email", CLIENT_EMAIL.into())],
    )
    .await
    .unwrap();
    let (code, seen) = latest_code(outbox, seen);
    post("/signup/verify", vec![("code", code)]).await.unwrap();
    post(
        "/signup/pin",
        vec![("pin", "482913".into()), ("confirm", "482913".into())],
    )
    .await
    .unwrap();
    post("/signin", vec![("email", CLIENT_EMAIL.into())])
        .await
        .unwrap();
    post("/signin/pin", vec![("pin", "482913".into())])
        .await
        .unwrap();
    let (code, _) = latest_code(outbox, seen);
    let home = post("/signin/code", vec![("code", code)]).await.unwrap();
    assert_eq!(home.url().path(), "/", "signed in");
}
