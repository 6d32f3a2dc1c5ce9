//! Test harness: the real portal on 127.0.0.1:0 with a temp data directory, a real
//! SMTP server on loopback that receives its mail, and a cookie-keeping browser.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portal::AppState;
use portal::config::{Config, SmtpSecurity};
use portal::infra::audit::Actor;
use regex::Regex;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};

// ---------- SMTP server ----------

#[derive(Clone, Debug)]
pub struct Mail {
    pub to: Vec<String>,
    pub data: String,
}

impl Mail {
    /// The message with quoted-printable soft breaks and `=3D` undone.
    pub fn text(&self) -> String {
        self.data.replace("=\r\n", "").replace("=3D", "=")
    }

    pub fn subject(&self) -> String {
        self.data
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("")
            .to_string()
    }

    pub fn code(&self) -> String {
        let re = Regex::new(r"access code is: (\d{6})").unwrap();
        re.captures(&self.text())
            .map(|c| c[1].to_string())
            .unwrap_or_else(|| panic!("no access code in:\n{}", self.data))
    }
}

/// A small but real SMTP server (RFC 5321 commands over TCP) that keeps what it receives.
#[derive(Clone)]
pub struct Smtp {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    arrived: Arc<Notify>,
    down: Arc<AtomicBool>,
    hung: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
}

impl Smtp {
    pub async fn start() -> Smtp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let smtp = Smtp {
            port: listener.local_addr().unwrap().port(),
            mails: Arc::default(),
            arrived: Arc::default(),
            down: Arc::default(),
            hung: Arc::default(),
            connections: Arc::default(),
        };
        let server = smtp.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = server.clone();
                tokio::spawn(async move { s.session(stream).await });
            }
        });
        smtp
    }

    /// While down, every connection is refused with 421 (a temporary failure).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// While hung, every new connection is accepted and then never answered (a
    /// stuck relay); it stays open until the client gives up.
    pub fn set_hung(&self, hung: bool) {
        self.hung.store(hung, Ordering::SeqCst);
    }

    /// How many connections the server has accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    async fn session(&self, stream: tokio::net::TcpStream) {
        self.connections.fetch_add(1, Ordering::SeqCst);
        if self.hung.load(Ordering::SeqCst) {
            let mut stream = stream;
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut sink).await;
            return;
        }
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        if self.down.load(Ordering::SeqCst) {
            let _ = write.write_all(b"421 test server unavailable\r\n").await;
            return;
        }
        let _ = write.write_all(b"220 localhost test SMTP\r\n").await;
        let mut to = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let upper = line.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") {
                b"250-localhost\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
            } else if upper.starts_with("RCPT TO:") {
                to.push(line[8..].trim().trim_matches(['<', '>']).to_string());
                b"250 OK\r\n"
            } else if upper.starts_with("DATA") {
                let _ = write.write_all(b"354 go ahead\r\n").await;
                let mut data = String::new();
                while let Ok(Some(l)) = lines.next_line().await {
                    if l == "." {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    data.push_str("\r\n");
                }
                self.mails.lock().unwrap().push(Mail {
                    to: std::mem::take(&mut to),
                    data,
                });
                self.arrived.notify_waiters();
                b"250 queued\r\n"
            } else if upper.starts_with("QUIT") {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            } else {
                b"250 OK\r\n"
            };
            if write.write_all(reply).await.is_err() {
                return;
            }
        }
    }

    pub fn all(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    pub fn count_to(&self, to: &str) -> usize {
        self.all()
            .iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(to)))
            .count()
    }

    /// The newest mail to `to` whose subject contains `subject`, waiting (up to
    /// 10 s) for it to arrive if needed. Only mail after the first `skip` such ones counts.
    pub async fn wait_nth(&self, to: &str, subject: &str, n: usize) -> Mail {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let arrived = self.arrived.notified();
            let matching: Vec<Mail> = self
                .all()
                .into_iter()
                .filter(|m| {
                    m.to.iter().any(|t| t.eq_ignore_ascii_case(to)) && m.subject().contains(subject)
                })
                .collect();
            if matching.len() > n {
                return matching[n].clone();
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "no mail #{n} to {to} with subject containing {subject:?}; got {:?}",
                    self.all()
                        .iter()
                        .map(|m| (m.to.clone(), m.subject()))
                        .collect::<Vec<_>>()
                );
            }
        }
    }

    /// The first mail to `to` whose subject contains `subject`, waiting (up to 10 s)
    /// for it to arrive if needed.
    pub async fn first(&self, to: &str, subject: &str) -> Mail {
        self.wait_nth(to, subject, 0).await
    }

    pub fn matching(&self, to: &str, subject: &str) -> usize {
        self.all()
            .iter()
            .filter(|m| {
                m.to.iter().any(|t| t.eq_ignore_ascii_case(to)) && m.subject().contains(subject)
            })
            .count()
    }

    /// The access code of the next code email to `to` (after those already seen).
    pub async fn next_code(&self, to: &str, seen: &mut usize) -> String {
        let mail = self.wait_nth(to, "access code", *seen).await;
        *seen += 1;
        mail.code()
    }
}

// ---------- the portal ----------

/// The `portal` binary cargo built for these tests, or the copy named by
/// `TEST_PORTAL_BIN` (where several checkouts share one target directory, another
/// checkout's build can replace the built one while the tests run).
pub fn portal_bin() -> std::path::PathBuf {
    std::env::var_os("TEST_PORTAL_BIN")
        .map_or_else(|| env!("CARGO_BIN_EXE_portal").into(), Into::into)
}

pub struct TestPortal {
    pub url: String,
    pub smtp: Smtp,
    pub state: AppState,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestPortal {
    pub async fn start() -> TestPortal {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestPortal {
        Self::start_on("127.0.0.1:0", adjust).await
    }

    /// Like [`start_with`](Self::start_with), listening on `bind`: `[::]:0` gives a
    /// dual-stack socket, which sees IPv4 clients as `::ffff:a.b.c.d`. The URL
    /// always reaches it over 127.0.0.1.
    pub async fn start_on(bind: &str, adjust: impl FnOnce(&mut Config)) -> TestPortal {
        let smtp = Smtp::start().await;
        let dir = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind(bind).unwrap();
        let addr =
            std::net::SocketAddr::from(([127, 0, 0, 1], listener.local_addr().unwrap().port()));
        let mut config = Config::default();
        config.server.listen = addr;
        config.server.public_url = format!("http://{addr}").parse().unwrap();
        config.storage.data_dir = dir.path().join("data");
        config.firm.name = "Smith & Lee CPAs".into();
        config.firm.phone = "555-0100".into();
        config.mail.smtp_host = "127.0.0.1".into();
        config.mail.smtp_port = smtp.port;
        config.mail.smtp_security = SmtpSecurity::None;
        // Cheap argon2 keeps the suite fast; the default stays strong.
        config.security.argon2_memory_kib = 64;
        config.security.argon2_iterations = 1;
        // Undefined template variables fail the test instead of rendering empty.
        config.theme.strict_variables = true;
        // The tests run the library in-process: PDF text is read by the real binary.
        config.documents.extract_program = portal_bin().to_string_lossy().into_owned();
        adjust(&mut config);
        Self::launch(config, listener, smtp, dir)
    }

    fn launch(
        config: Config,
        listener: std::net::TcpListener,
        smtp: Smtp,
        dir: tempfile::TempDir,
    ) -> TestPortal {
        // Tests reach the listener itself, whatever public URL the config names
        // (over 127.0.0.1 when it listens on every address).
        let mut local = listener.local_addr().unwrap();
        if local.ip().is_unspecified() {
            local = std::net::SocketAddr::from(([127, 0, 0, 1], local.port()));
        }
        let url = format!("http://{local}");
        let state = AppState::open(config).unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(portal::serve(state.clone(), listener, async move {
            let _ = rx.await;
        }));
        TestPortal {
            url,
            smtp,
            state,
            dir,
            stop: Some(tx),
            server: Some(server),
        }
    }

    /// Stops the server, runs `while_stopped`, and starts it again on the same data
    /// directory and SMTP server (on a new port), as after a restart.
    pub async fn restart(mut self, while_stopped: impl FnOnce(&TestPortal)) -> TestPortal {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        while_stopped(&self);
        let TestPortal {
            smtp, state, dir, ..
        } = self;
        let mut config = (*state.config).clone();
        drop(state);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        config.server.listen = addr;
        config.server.public_url = format!("http://{addr}").parse().unwrap();
        let portal = Self::launch(config, listener, smtp, dir);
        portal.wait_until_ready().await;
        portal
    }

    /// Waits (up to 10 s) until the server answers its health check.
    pub async fn wait_until_ready(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let client = reqwest::Client::new();
        while !client
            .get(format!("{}/healthz", self.url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the portal did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.url)
    }

    /// A browser whose requests say (in `X-Forwarded-For`) they come from `ip`;
    /// the portal believes it only with `server.trust_proxy_headers`.
    pub fn browser_from(&self, ip: &str) -> Browser {
        Browser::with_headers(&self.url, &[("x-forwarded-for", ip)])
    }

    /// Invites a client as the system, from `ip`, without waiting for the mail.
    pub async fn invite_from(&self, name: &str, email: &str, ip: &str) {
        portal::accounts::invite::invite_client(&self.state, name, email, Actor::System, ip)
            .await
            .unwrap();
    }

    /// Makes the queued mail matching `filter` (a WHERE clause or nothing) due now,
    /// wakes the mail worker and waits for `to`'s first invitation.
    pub async fn deliver_invitation_now(&self, filter: &str, to: &str) -> Mail {
        self.sql(&format!(
            "UPDATE mail_queue SET next_attempt_at = 0{filter}"
        ));
        self.state.mailer.wake();
        self.smtp.first(to, "created a client portal").await
    }

    /// Invites `email` and waits for this invitation (not an earlier one) to arrive.
    pub async fn invite(&self, name: &str, email: &str) {
        let earlier = self.smtp.matching(email, "created a client portal");
        self.invite_from(name, email, "127.0.0.1").await;
        self.smtp
            .wait_nth(email, "created a client portal", earlier)
            .await;
    }

    /// A portal where client Jane Doe (jane@example.com, [`PIN`]) is signed in; returns
    /// it and her browser.
    pub async fn with_jane() -> (TestPortal, Browser) {
        let portal = TestPortal::start().await;
        let jane = portal.client("Jane Doe", "jane@example.com", PIN).await;
        (portal, jane)
    }

    /// Invites `email`, signs up with `pin` and signs in; returns the signed-in browser.
    pub async fn client(&self, name: &str, email: &str, pin: &str) -> Browser {
        let b = self.signed_up(name, email, pin).await;
        b.sign_in(self, email, pin).await;
        b
    }

    /// Invites `email` and signs up with `pin`; returns the browser, not signed in.
    pub async fn signed_up(&self, name: &str, email: &str, pin: &str) -> Browser {
        self.invite(name, email).await;
        let b = self.browser();
        b.sign_up(self, name, email, pin).await;
        b
    }

    /// Runs SQL against the portal's real database file (to age codes, inspect state).
    pub fn sql(&self, sql: &str) -> usize {
        let conn = rusqlite::Connection::open(self.dir.path().join("data/portal.db")).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.execute(sql, []).unwrap()
    }

    pub fn query_i64(&self, sql: &str) -> i64 {
        let conn = rusqlite::Connection::open(self.dir.path().join("data/portal.db")).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    pub fn query_text(&self, sql: &str) -> String {
        let conn = rusqlite::Connection::open(self.dir.path().join("data/portal.db")).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Where the encrypted file of document `public_id` is stored.
    pub fn blob_path(&self, public_id: &str) -> std::path::PathBuf {
        let blob = self.query_text(&format!(
            "SELECT blob FROM documents WHERE public_id = '{public_id}'"
        ));
        let dir = self.dir.path().join("data/documents").join(&blob[..2]);
        dir.join(blob)
    }

    /// The public id of the client whose sign-in address is `email`.
    pub fn client_id(&self, email: &str) -> String {
        self.query_text(&format!(
            "SELECT c.public_id FROM clients c JOIN client_emails e ON e.client_id = c.id WHERE e.email_key = '{email}'"
        ))
    }

    /// Waits (up to 10 s) until `sql` yields `want`, for work done by background jobs.
    pub async fn eventually_i64(&self, sql: &str, want: i64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.query_i64(sql);
            if got == want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{sql} gave {got}, not {want}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends the batched staff notices of client uploads now, as if their batch
    /// window had passed; returns how many batches went out.
    pub async fn flush_upload_notices(&self) -> usize {
        self.sql("UPDATE upload_notices SET created_at = created_at - 86400");
        portal::documents::notify::flush_due(&self.state)
            .await
            .unwrap()
    }

    /// Stops the server, keeping its data directory (to run `portal` commands on
    /// it, or to start it again with [`Halted::start`]).
    pub async fn halt(mut self) -> Halted {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        Halted {
            config: (*self.state.config).clone(),
            smtp: self.smtp,
            dir: self.dir,
        }
    }

    /// Stops the server and starts it again on the same data directory and
    /// address (browsers keep their sessions).
    pub async fn restart_on_same_address(self) -> TestPortal {
        self.halt().await.start().await
    }

    /// Stops the server and checks the database and the audit chain are intact.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        self.state
            .db
            .check_integrity()
            .await
            .expect("database integrity");
        let records = self
            .state
            .db
            .read(|c| portal::infra::audit::all(c).map_err(portal::infra::db::DbError::from))
            .await
            .unwrap();
        portal::infra::audit::verify(&records).expect("audit chain intact");
    }
}

/// A stopped portal whose data directory is kept.
pub struct Halted {
    pub dir: tempfile::TempDir,
    pub config: Config,
    smtp: Smtp,
}

impl Halted {
    pub async fn start(self) -> TestPortal {
        // The stopped server lets go of its address a moment after it stops.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match std::net::TcpListener::bind(self.config.server.listen) {
                Ok(listener) => break listener,
                Err(e) if std::time::Instant::now() > deadline => panic!("{e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let state = AppState::open(self.config).unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(portal::serve(state.clone(), listener, async move {
            let _ = rx.await;
        }));
        TestPortal {
            url: state.config.base_url().to_string(),
            smtp: self.smtp,
            state,
            dir: self.dir,
            stop: Some(tx),
            server: Some(server),
        }
    }
}

// ---------- a browser ----------

pub struct Page {
    pub status: u16,
    pub url: String,
    pub body: String,
}

impl Page {
    /// Whether the page shows `text` (as HTML-escaped text or as markup).
    pub fn has(&self, text: &str) -> bool {
        let unescaped = self
            .body
            .replace("&#x2f;", "/")
            .replace("&#x27;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        self.body.contains(text) || unescaped.contains(text)
    }

    /// Asserts the form was refused (422) and shows `text`.
    #[track_caller]
    pub fn refused(&self, text: &str) -> &Self {
        assert_eq!(self.status, 422, "{}", self.body);
        self.expect(text)
    }

    #[track_caller]
    pub fn expect(&self, text: &str) -> &Self {
        assert!(
            self.has(text),
            "expected {text:?} on {} ({}):\n{}",
            self.url,
            self.status,
            self.body
        );
        self
    }

    /// The body with `email` replaced and the CSRF field left out, for comparing
    /// the answers given about two addresses.
    pub fn text_without(&self, email: &str) -> String {
        self.body
            .replace(email, "EMAIL")
            .lines()
            .filter(|l| !l.contains("name=\"csrf\""))
            .collect()
    }

    pub fn path(&self) -> String {
        let u = url::Url::parse(&self.url).unwrap();
        u.path().to_string()
    }
}

pub struct Browser {
    base: String,
    client: reqwest::Client,
    csrf: Mutex<Option<String>>,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Self::with_headers(base, &[])
    }

    /// A browser that sends `headers` with every request.
    pub fn with_headers(base: &str, headers: &[(&'static str, &str)]) -> Browser {
        let mut defaults = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            defaults.append(*name, value.parse().unwrap());
        }
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .user_agent("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 test")
            .default_headers(defaults)
            .build()
            .unwrap();
        Browser {
            base: base.to_string(),
            client,
            csrf: Mutex::new(None),
        }
    }

    async fn page(&self, resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let url = resp.url().to_string();
        let body = resp.text().await.unwrap();
        let re = Regex::new(r#"name="csrf" value="([^"]+)""#).unwrap();
        if let Some(c) = re.captures(&body) {
            *self.csrf.lock().unwrap() = Some(c[1].to_string());
        }
        Page { status, url, body }
    }

    pub async fn get(&self, path: &str) -> Page {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        self.page(resp).await
    }

    /// Posts a form with this browser's CSRF token (fetching a page first if needed).
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        if self.csrf.lock().unwrap().is_none() {
            self.get("/signin").await;
        }
        let csrf = self.csrf.lock().unwrap().clone().unwrap();
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &csrf));
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .form(&form)
            .send()
            .await
            .unwrap();
        self.page(resp).await
    }

    pub async fn post_without_csrf(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .unwrap();
        self.page(resp).await
    }

    /// S2 from the sign-up page to "Create Account".
    pub async fn sign_up(&self, portal: &TestPortal, name: &str, email: &str, pin: &str) {
        let mut seen = portal.smtp.matching(email, "access code");
        self.start_sign_up(name, email)
            .await
            .expect("Verify your email");
        self.post_next_code(portal, email, &mut seen, "/signup/verify")
            .await
            .expect("Create PIN");
        self.choose_pin("/signup/pin", pin)
            .await
            .expect("Your account is ready");
    }

    /// Enters `email` on the sign-in page; returns the page it leads to.
    pub async fn enter_email(&self, email: &str) -> Page {
        self.post("/signin", &[("email", email)]).await
    }

    /// The Documents page searched for `q` (written as in a URL).
    pub async fn search(&self, q: &str) -> Page {
        self.get(&format!("/documents?q={q}")).await
    }

    /// The sign-up page's first step: name and email.
    pub async fn start_sign_up(&self, name: &str, email: &str) -> Page {
        self.post("/signup", &[("name", name), ("email", email)])
            .await
    }

    /// Enters `pin` on the sign-in PIN page.
    pub async fn submit_pin(&self, pin: &str) -> Page {
        self.post("/signin/pin", &[("pin", pin)]).await
    }

    /// Enters `code` on the sign-in access code page.
    pub async fn submit_code(&self, code: &str) -> Page {
        self.post("/signin/code", &[("code", code)]).await
    }

    /// Types a new PIN twice on the form at `path`; returns the page after it.
    pub async fn choose_pin(&self, path: &str, pin: &str) -> Page {
        self.post(path, &[("pin", pin), ("confirm", pin)]).await
    }

    /// Enters `email` and then `pin` on the sign-in pages; returns the page after the PIN.
    pub async fn enter_pin(&self, email: &str, pin: &str) -> Page {
        self.enter_email(email).await;
        self.submit_pin(pin).await
    }

    /// Enters `email` and `pin` on the sign-in pages and expects them refused.
    pub async fn pin_refused(&self, email: &str, pin: &str) {
        self.enter_pin(email, pin)
            .await
            .expect("The email or PIN is not right");
    }

    /// Update PIN: the current PIN and the new one, typed twice.
    pub async fn change_pin(&self, current: &str, pin: &str) -> Page {
        let fields = [("current", current), ("pin", pin), ("confirm", pin)];
        self.post("/security/pin", &fields).await
    }

    /// Update Email ID: the current PIN and the new address.
    pub async fn change_email(&self, current: &str, email: &str) -> Page {
        let fields = [("current", current), ("email", email)];
        self.post("/security/email", &fields).await
    }

    /// Staff's Add Client form.
    pub async fn add_client(&self, name: &str, email: &str) -> Page {
        self.post("/staff/clients", &[("name", name), ("email", email)])
            .await
    }

    /// Posts the next code mailed to `to` (after `seen` of them) to `path`.
    pub async fn post_next_code(
        &self,
        portal: &TestPortal,
        to: &str,
        seen: &mut usize,
        path: &str,
    ) -> Page {
        let code = portal.smtp.next_code(to, seen).await;
        self.post(path, &[("code", &code)]).await
    }

    /// S3 from the sign-in page to the home page.
    pub async fn sign_in(&self, portal: &TestPortal, email: &str, pin: &str) -> Page {
        let mut seen = portal.smtp.matching(email, "access code");
        let page = self.enter_email(email).await;
        if page.path() == "/signin/pin" {
            self.submit_pin(pin).await.expect("Enter your access code");
        } else {
            assert_eq!(page.path(), "/signin/code", "{}", page.body);
        }
        let home = self
            .post_next_code(portal, email, &mut seen, "/signin/code")
            .await;
        assert_eq!(home.path(), "/", "{}", home.body);
        home
    }
}

// ---------- documents helpers ----------

pub const STAFF_PASSWORD: &str = "correct horse battery staple";

/// The PIN the tests' clients choose.
pub const PIN: &str = "482913";

/// Bob's PIN, and the new PIN where Jane changes hers.
pub const BOB_PIN: &str = "730264";

/// Adds staff member Ann and returns a browser signed in to the staff area.
pub async fn staff_browser(portal: &TestPortal) -> Browser {
    portal::firm::add_staff(
        &portal.state,
        "ann@smithlee.example",
        "Ann Smith",
        STAFF_PASSWORD,
    )
    .await
    .unwrap();
    let b = portal.browser();
    let page = b
        .post(
            "/staff/signin",
            &[
                ("email", "ann@smithlee.example"),
                ("password", STAFF_PASSWORD),
            ],
        )
        .await;
    let secret = Regex::new(r#"<code class="secret">([A-Z2-7]+)</code>"#)
        .unwrap()
        .captures(&page.body)
        .expect("enrolment")[1]
        .to_string();
    let code = portal::firm::totp::current_code(&secret).unwrap();
    let home = b.post("/staff/totp", &[("code", &code)]).await;
    assert_eq!(home.path(), "/staff", "{}", home.body);
    b
}

/// A small but real PDF with one page of text and one bookmark.
pub fn pdf_with_text(text: &str) -> Vec<u8> {
    let content = format!("BT /F1 18 Tf 72 700 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R /Outlines 5 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 6 0 R >> >> >>".to_string(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Outlines /First 7 0 R /Last 7 0 R /Count 1 >>".to_string(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_string(),
        "<< /Title (Summary) /Parent 5 0 R /Dest [3 0 R /XYZ 0 792 0] >>".to_string(),
    ];
    let objects: Vec<Vec<u8>> = objects.into_iter().map(String::into_bytes).collect();
    pdf_of(&objects)
}

/// A PDF made of these objects, numbered from 1 (object 1 is the catalog).
pub fn pdf_of(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, obj) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend(obj);
        out.extend(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for o in offsets {
        out.extend(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Browser {
    pub fn csrf(&self) -> String {
        self.csrf
            .lock()
            .unwrap()
            .clone()
            .expect("visit a page first")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A GET of `path` with this browser's cookies, to send as it is or to add to.
    pub fn get_request(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    /// GETs `path` with `headers` added, as raw status, headers and bytes.
    pub async fn get_raw(&self, path: &str, headers: &[(&str, &str)]) -> Raw {
        let mut req = self.get_request(path);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.raw(req).await
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.client
    }

    /// A request with this browser's cookies, returning the raw response.
    pub async fn raw(&self, req: reqwest::RequestBuilder) -> Raw {
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        Raw {
            status,
            headers,
            body,
        }
    }

    /// Publishes files to a client as staff (multipart, like the staff page's form).
    pub async fn publish(
        &self,
        client_id: &str,
        folder: &str,
        message: &str,
        files: &[(&str, Vec<u8>)],
    ) -> Page {
        let mut form = reqwest::multipart::Form::new()
            .text("csrf", self.csrf())
            .text("folder", folder.to_string())
            .text("message", message.to_string())
            .text("kind", "other");
        for (name, bytes) in files {
            form = form.part(
                "files",
                reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string()),
            );
        }
        let resp = self
            .client
            .post(self.url(&format!("/staff/clients/{client_id}/publish")))
            .multipart(form)
            .send()
            .await
            .unwrap();
        self.page(resp).await
    }

    /// Starts a resumable upload; returns the upload URL path.
    pub async fn create_upload(
        &self,
        name: &str,
        folder: &str,
        length: usize,
    ) -> Result<String, Raw> {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let r = self
            .raw(
                self.client
                    .post(self.url("/uploads"))
                    .header("X-CSRF-Token", self.csrf())
                    .header("Tus-Resumable", "1.0.0")
                    .header("Upload-Length", length.to_string())
                    .header(
                        "Upload-Metadata",
                        format!("filename {},folder {}", b64(name), b64(folder)),
                    ),
            )
            .await;
        if r.status != 201 {
            return Err(r);
        }
        Ok(r.headers["location"].to_str().unwrap().to_string())
    }

    pub async fn patch_upload(&self, location: &str, offset: usize, bytes: Vec<u8>) -> Raw {
        self.raw(
            self.client
                .patch(self.url(location))
                .header("X-CSRF-Token", self.csrf())
                .header("Tus-Resumable", "1.0.0")
                .header("Content-Type", "application/offset+octet-stream")
                .header("Upload-Offset", offset.to_string())
                .body(bytes),
        )
        .await
    }

    pub async fn upload_offset(&self, location: &str) -> usize {
        let r = self
            .raw(
                self.client
                    .head(self.url(location))
                    .header("Tus-Resumable", "1.0.0"),
            )
            .await;
        assert_eq!(r.status, 200);
        r.headers["upload-offset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Uploads a whole file in one request; returns the new document's id.
    pub async fn upload(&self, name: &str, bytes: &[u8]) -> String {
        let location = self
            .create_upload(name, "Uploaded", bytes.len())
            .await
            .unwrap_or_else(|r| {
                panic!(
                    "create refused: {} {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                )
            });
        let r = self.patch_upload(&location, 0, bytes.to_vec()).await;
        assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
        r.headers["upload-complete"].to_str().unwrap().to_string()
    }
}

// ---------- the portal binary ----------

/// The `portal` binary, run in `dir` without a configuration from the environment.
/// `TEST_PORTAL_BIN` names a copy of it, for when other builds share the target dir.
pub fn portal_binary(dir: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(portal_bin());
    c.current_dir(dir)
        .env_remove("PORTAL_CONFIG")
        .env_remove("NO_COLOR")
        // Undefined template variables fail the test instead of rendering empty.
        .env("PORTAL_THEME__STRICT_VARIABLES", "true");
    c
}

/// `portal client add` for Jane Doe.
pub const ADD_JANE: [&str; 6] = [
    "client",
    "add",
    "--name",
    "Jane Doe",
    "--email",
    "jane@example.com",
];

/// Asserts that a command exited 0 (showing its stdout and stderr if not);
/// returns its stdout.
#[track_caller]
pub fn succeeded(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Starts `portal serve` in `dir`; returns it and the first line it printed.
pub fn spawn_serve(dir: &std::path::Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut server = portal_binary(dir)
        .arg("serve")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    (server, first)
}
