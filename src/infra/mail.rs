//! Outgoing mail through a persistent queue. Messages are rendered from theme
//! templates, stored in `mail_queue` inside the caller's transaction, and delivered
//! by a background worker over SMTP, or written to the outbox directory as `.eml`
//! files when no SMTP server is configured.
//!
//! Every network step has a time limit (see [`crate::infra::smtp`]); a timed-out
//! attempt is a temporary failure and is retried on `mail.retry_delays_seconds`.
//! Mail that expires (access codes) goes first, is retried every
//! `mail.code_retry_seconds`, and is dropped rather than sent late. Nothing is lost
//! while the SMTP server is down or hung, nor when the portal stops mid-delivery.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::{Config, SmtpSecurity};
use crate::infra::db::{Db, DbError, now};
use crate::infra::render::RenderedEmail;
use crate::infra::smtp::{SmtpServer, Transcript, seconds};

/// How long a stopping portal lets an in-flight delivery finish before it
/// abandons it (the message stays queued).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Most messages one pass of the worker handles before it looks at the clock again.
const PASS_LIMIT: usize = 50;

/// The longest the worker sleeps between looks at the queue.
const IDLE_POLL: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub struct Mailer {
    db: Db,
    from: Mailbox,
    transport: Arc<Transport>,
    wake: Arc<Notify>,
    policy: Arc<Policy>,
}

enum Transport {
    Smtp(SmtpServer),
    Outbox(PathBuf),
}

/// Limits and the retry schedule, from `[mail]`.
struct Policy {
    max_attempts: u32,
    send_timeout: Duration,
    retry_delays: Vec<i64>,
    code_retry: i64,
}

impl Policy {
    /// Seconds until the next attempt after `attempts` failed ones.
    fn delay(&self, attempts: u32, expires: bool) -> i64 {
        if expires {
            return self.code_retry;
        }
        let index = (attempts.max(1) as usize - 1).min(self.retry_delays.len() - 1);
        self.retry_delays[index]
    }

    /// How long a claimed message stays reserved for the process sending it; if
    /// that process dies, another may try once the claim lapses.
    fn lease(&self) -> i64 {
        self.send_timeout.as_secs() as i64 + 30
    }
}

/// Puts a rendered email in the queue, inside the caller's transaction.
pub fn queue(conn: &Connection, to: &str, email: &RenderedEmail) -> rusqlite::Result<()> {
    insert(conn, to, email, None)
}

/// Queues mail that is worthless after `expires_at` (it carries an access code):
/// it goes before other mail, is retried promptly, and is dropped once expired.
pub fn queue_expiring(
    conn: &Connection,
    to: &str,
    email: &RenderedEmail,
    expires_at: i64,
) -> rusqlite::Result<()> {
    insert(conn, to, email, Some(expires_at))
}

fn insert(
    conn: &Connection,
    to: &str,
    email: &RenderedEmail,
    expires_at: Option<i64>,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO mail_queue (to_addr, subject, text_body, html_body, created_at, next_attempt_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
        params![to, email.subject, email.text, email.html, now(), expires_at],
    )?;
    Ok(())
}

struct Pending {
    id: i64,
    to: String,
    subject: String,
    text: String,
    html: String,
    attempts: u32,
    expires_at: Option<i64>,
}

/// Why an attempt failed, and what that means for the queue.
#[derive(Debug)]
pub struct DeliveryError {
    pub message: String,
    permanent: bool,
    server_down: bool,
}

impl DeliveryError {
    fn transient(message: String) -> Self {
        DeliveryError {
            message,
            permanent: false,
            server_down: false,
        }
    }

    fn permanent(message: String) -> Self {
        DeliveryError {
            message,
            permanent: true,
            server_down: false,
        }
    }
}

impl From<crate::infra::smtp::SmtpError> for DeliveryError {
    fn from(e: crate::infra::smtp::SmtpError) -> Self {
        DeliveryError {
            permanent: e.is_permanent(),
            server_down: e.server_unavailable(),
            message: e.to_string(),
        }
    }
}

/// What one pass of the worker did.
struct PassOutcome {
    attempted: usize,
    /// The pass stopped early because the server is unreachable or hung.
    server_down: bool,
}

/// The worker's view of its own pass, shared with the shutdown path.
#[derive(Default)]
struct Worker {
    /// The message being delivered right now, if any.
    in_flight: Mutex<Option<i64>>,
    /// Set when the portal stops: finish the current message, claim no more.
    stopping: AtomicBool,
}

impl Worker {
    fn set_in_flight(&self, id: Option<i64>) {
        *self.in_flight.lock().unwrap_or_else(|e| e.into_inner()) = id;
    }

    fn in_flight(&self) -> Option<i64> {
        *self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The result of a one-off attempt made by a command (`portal client add`).
pub enum TryOutcome {
    Delivered,
    /// Still queued, with the reason it was not delivered now.
    Queued(String),
    NothingPending,
}

/// The result of `portal mail test`.
pub enum TestOutcome {
    Accepted,
    WrittenTo(PathBuf),
}

impl Mailer {
    pub fn new(config: &Config, db: Db) -> anyhow::Result<Self> {
        let from: Mailbox = config.mail.from.parse()?;
        let m = &config.mail;
        let transport = if m.smtp_host.is_empty() {
            Transport::Outbox(config.outbox_dir())
        } else {
            let credentials = (!m.smtp_username.is_empty())
                .then(|| Credentials::new(m.smtp_username.clone(), m.smtp_password.clone()));
            Transport::Smtp(SmtpServer::new(
                &m.smtp_host,
                m.smtp_port,
                m.smtp_security,
                credentials,
                Duration::from_secs(m.timeout_seconds.into()),
            )?)
        };
        let policy = Policy {
            max_attempts: m.max_attempts,
            send_timeout: Duration::from_secs(m.send_timeout_seconds.into()),
            retry_delays: m.retry_delays_seconds.iter().map(|&d| d.into()).collect(),
            code_retry: m.code_retry_seconds.into(),
        };
        Ok(Mailer {
            db,
            from,
            transport: Arc::new(transport),
            wake: Arc::new(Notify::new()),
            policy: Arc::new(policy),
        })
    }

    /// Where mail goes, for the start-up log line and `portal mail test`.
    pub fn describe(&self) -> String {
        match &*self.transport {
            Transport::Smtp(s) => format!(
                "SMTP server {}:{} ({}; at most {} per step and {} per attempt)",
                s.host,
                s.port,
                match s.security {
                    SmtpSecurity::Starttls => "STARTTLS",
                    SmtpSecurity::Tls => "TLS",
                    SmtpSecurity::None => "unencrypted",
                },
                seconds(s.step_timeout),
                seconds(self.policy.send_timeout)
            ),
            Transport::Outbox(dir) => format!(
                "outbox directory {} (no SMTP server configured)",
                dir.display()
            ),
        }
    }

    /// Tells the worker that new mail is waiting.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Delivers queued mail until `shutdown` resolves. A delivery in flight then
    /// gets [`SHUTDOWN_GRACE`] to finish; after that it is abandoned and its
    /// message stays queued, due at once for the next start.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let worker = Worker::default();
        loop {
            let mut pass = Box::pin(self.pass(&worker));
            let outcome = tokio::select! {
                outcome = &mut pass => outcome,
                () = &mut shutdown => {
                    worker.stopping.store(true, Ordering::SeqCst);
                    if tokio::time::timeout(SHUTDOWN_GRACE, &mut pass).await.is_err() {
                        drop(pass);
                        self.release(&worker).await;
                    }
                    return;
                }
            };
            drop(pass);
            if outcome.attempted > 0 && !outcome.server_down {
                continue;
            }
            let pause = self.pause(outcome.server_down).await;
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One pass over the due messages, most urgent first; returns how many were
    /// attempted.
    pub async fn deliver_due(&self) -> usize {
        self.pass(&Worker::default()).await.attempted
    }

    async fn pass(&self, worker: &Worker) -> PassOutcome {
        self.drop_expired().await;
        let mut attempted = 0;
        while attempted < PASS_LIMIT && !worker.stopping.load(Ordering::SeqCst) {
            let message = match self.claim(None).await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "could not read the mail queue");
                    break;
                }
            };
            worker.set_in_flight(Some(message.id));
            let outcome = self.attempt(&message, self.policy.send_timeout).await;
            self.record(&message, &outcome).await;
            worker.set_in_flight(None);
            attempted += 1;
            if outcome.as_ref().is_err_and(|e| e.server_down) {
                // The rest would wait on the same dead server; they keep their turn.
                return PassOutcome {
                    attempted,
                    server_down: true,
                };
            }
        }
        PassOutcome {
            attempted,
            server_down: false,
        }
    }

    /// How long to sleep: until the next message is due (at most [`IDLE_POLL`]),
    /// or, after the server failed, the prompt retry interval.
    async fn pause(&self, server_down: bool) -> Duration {
        if server_down {
            return Duration::from_secs(self.policy.code_retry as u64);
        }
        let next: Result<Option<i64>, DbError> = self
            .db
            .read(|conn| {
                conn.query_row(
                    "SELECT min(next_attempt_at) FROM mail_queue WHERE sent_at IS NULL AND failed_at IS NULL",
                    [],
                    |r| r.get(0),
                )
                .map_err(DbError::from)
            })
            .await;
        match next {
            Ok(Some(at)) => {
                Duration::from_secs((at - now()).clamp(1, IDLE_POLL.as_secs() as i64) as u64)
            }
            _ => IDLE_POLL,
        }
    }

    /// Tries once, now, to deliver the newest pending message to `to`, for at
    /// most `limit`; what is not delivered stays queued for the server's worker.
    /// Commands use this so that they never wait long on a mail server.
    pub async fn try_deliver_latest(&self, to: &str, limit: Duration) -> TryOutcome {
        let message = match self.claim(Some(to.to_string())).await {
            Ok(Some(m)) => m,
            Ok(None) => return TryOutcome::NothingPending,
            Err(e) => return TryOutcome::Queued(format!("the mail queue could not be read: {e}")),
        };
        let outcome = self
            .attempt(&message, limit.min(self.policy.send_timeout))
            .await;
        self.record(&message, &outcome).await;
        match outcome {
            Ok(()) => TryOutcome::Delivered,
            Err(e) => TryOutcome::Queued(e.message),
        }
    }

    /// Marks pending mail whose content expired as dropped (never sent late).
    async fn drop_expired(&self) {
        let dropped = self
            .db
            .write(|tx| {
                let mut stmt = tx.prepare(
                    "UPDATE mail_queue SET failed_at = ?1, dropped_at = ?1, text_body = '', html_body = ''
                     WHERE sent_at IS NULL AND failed_at IS NULL AND expires_at <= ?1
                       AND next_attempt_at <= ?1
                     RETURNING id",
                )?;
                let ids = stmt.query_map([now()], |r| r.get::<_, i64>(0))?;
                ids.collect::<Result<Vec<_>, _>>().map_err(DbError::from)
            })
            .await;
        match dropped {
            Ok(ids) => {
                for id in ids {
                    tracing::warn!(
                        mail_id = id,
                        "mail dropped: its access code expired before it could be delivered"
                    );
                }
            }
            Err(e) => tracing::error!(error = %e, "could not update the mail queue"),
        }
    }

    /// Claims the next due message (the newest one to `only_to`, if given) in the
    /// writer's transaction, so two processes never send the same message at once.
    async fn claim(&self, only_to: Option<String>) -> Result<Option<Pending>, DbError> {
        let lease = self.policy.lease();
        let order = if only_to.is_some() {
            "id DESC"
        } else {
            "expires_at IS NULL, id"
        };
        let sql = format!(
            "UPDATE mail_queue SET next_attempt_at = ?1 + ?2
             WHERE id = (SELECT id FROM mail_queue
                         WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?1
                           AND (expires_at IS NULL OR expires_at > ?1)
                           AND (?3 IS NULL OR to_addr = ?3)
                         ORDER BY {order} LIMIT 1)
             RETURNING id, to_addr, subject, text_body, html_body, attempts, expires_at"
        );
        self.db
            .write(move |tx| {
                tx.query_row(&sql, params![now(), lease, only_to], |r| {
                    Ok(Pending {
                        id: r.get(0)?,
                        to: r.get(1)?,
                        subject: r.get(2)?,
                        text: r.get(3)?,
                        html: r.get(4)?,
                        attempts: r.get(5)?,
                        expires_at: r.get(6)?,
                    })
                })
                .optional()
                .map_err(DbError::from)
            })
            .await
    }

    /// Makes a message claimed by an abandoned delivery due again at once.
    async fn release(&self, worker: &Worker) {
        let Some(id) = worker.in_flight() else {
            return;
        };
        let released = self
            .db
            .write(move |tx| {
                tx.execute(
                    "UPDATE mail_queue SET next_attempt_at = ?2
                     WHERE id = ?1 AND sent_at IS NULL AND failed_at IS NULL",
                    params![id, now()],
                )
                .map_err(DbError::from)
            })
            .await;
        match released {
            Ok(_) => tracing::warn!(
                mail_id = id,
                "stopping: a mail delivery in progress was abandoned; the message stays queued"
            ),
            Err(e) => tracing::error!(mail_id = id, error = %e, "could not update the mail queue"),
        }
    }

    fn build(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        html: &str,
    ) -> Result<Message, DeliveryError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| DeliveryError::permanent(format!("bad address: {e}")))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(
                text.to_string(),
                html.to_string(),
            ))
            .map_err(|e| DeliveryError::permanent(e.to_string()))
    }

    /// One delivery attempt, never longer than `limit` (plus a moment).
    async fn attempt(&self, m: &Pending, limit: Duration) -> Result<(), DeliveryError> {
        let email = self.build(&m.to, &m.subject, &m.text, &m.html)?;
        match &*self.transport {
            Transport::Smtp(server) => smtp_send(server, &email, limit, &mut |_, _| {}).await,
            Transport::Outbox(dir) => self.write_outbox(dir, m.id, &email).await.map(|_| ()),
        }
    }

    async fn write_outbox(
        &self,
        dir: &std::path::Path,
        id: i64,
        email: &Message,
    ) -> Result<PathBuf, DeliveryError> {
        let path = dir.join(format!("{}-{:06}.eml", now(), id));
        let bytes = email.formatted();
        let target = path.clone();
        tokio::task::spawn_blocking(move || crate::infra::fsutil::write_atomic(&target, &bytes))
            .await
            .map_err(|e| DeliveryError::transient(e.to_string()))?
            .map_err(|e| DeliveryError::transient(format!("{}: {e}", path.display())))?;
        tracing::info!(mail_id = id, path = %path.display(), "mail written to the outbox");
        Ok(path)
    }

    async fn record(&self, m: &Pending, outcome: &Result<(), DeliveryError>) {
        let (id, attempts, expires) = (m.id, m.attempts + 1, m.expires_at.is_some());
        let failure = outcome.as_ref().err().map(|e| {
            let give_up = e.permanent || (!expires && attempts >= self.policy.max_attempts);
            (
                e.message.clone(),
                give_up,
                self.policy.delay(attempts, expires),
            )
        });
        let result = self
            .db
            .write(move |tx| {
                match &failure {
                    None => tx.execute(
                        "UPDATE mail_queue SET sent_at = ?2, attempts = ?3, text_body = '', html_body = ''
                         WHERE id = ?1",
                        params![id, now(), attempts],
                    )?,
                    Some((error, give_up, delay)) => tx.execute(
                        "UPDATE mail_queue SET attempts = ?2, last_error = ?3, last_error_at = ?6,
                         next_attempt_at = ?6 + ?4,
                         failed_at = CASE WHEN ?5 THEN ?6 ELSE NULL END,
                         text_body = CASE WHEN ?5 THEN '' ELSE text_body END,
                         html_body = CASE WHEN ?5 THEN '' ELSE html_body END
                         WHERE id = ?1",
                        params![id, attempts, error, delay, give_up, now()],
                    )?,
                };
                Ok::<_, DbError>(failure)
            })
            .await;
        match result {
            Ok(None) => tracing::info!(mail_id = id, "mail delivered"),
            Ok(Some((error, true, _))) => {
                tracing::error!(mail_id = id, attempts, error = %error, "mail could not be delivered and was given up")
            }
            Ok(Some((error, false, delay))) => {
                tracing::warn!(mail_id = id, attempts, retry_in_seconds = delay, error = %error, "mail delivery failed; will retry")
            }
            Err(e) => tracing::error!(mail_id = id, error = %e, "could not update the mail queue"),
        }
    }

    /// Sends `email` to `to` at once, outside the queue, with the configured time
    /// limits, telling each step to `log` (`portal mail test`).
    pub async fn send_test(
        &self,
        to: &str,
        email: &RenderedEmail,
        log: Transcript<'_>,
    ) -> Result<TestOutcome, DeliveryError> {
        let message = self.build(to, &email.subject, &email.text, &email.html)?;
        match &*self.transport {
            Transport::Smtp(server) => smtp_send(server, &message, self.policy.send_timeout, log)
                .await
                .map(|()| TestOutcome::Accepted),
            Transport::Outbox(dir) => self
                .write_outbox(dir, 0, &message)
                .await
                .map(TestOutcome::WrittenTo),
        }
    }
}

/// Sends `email` through `server` within `limit`: every step is limited already,
/// and the whole is bounded too, however it hangs.
async fn smtp_send(
    server: &SmtpServer,
    email: &Message,
    limit: Duration,
    log: Transcript<'_>,
) -> Result<(), DeliveryError> {
    let bytes = email.formatted();
    let send = server.send(email.envelope(), &bytes, Instant::now() + limit, log);
    match tokio::time::timeout(limit + Duration::from_secs(1), send).await {
        Ok(result) => result.map_err(DeliveryError::from),
        Err(_) => Err(DeliveryError {
            message: format!("no answer within {}", seconds(limit)),
            permanent: false,
            server_down: true,
        }),
    }
}

/// The mail worker's health, for `portal mail status` and the staff home page.
#[derive(Debug, Default, serde::Serialize)]
pub struct Health {
    pub pending: i64,
    /// When the oldest message still waiting was queued.
    pub oldest_pending_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    pub failed: i64,
    pub dropped: i64,
}

/// A message dropped because what it carried expired before delivery.
#[derive(Debug, serde::Serialize)]
pub struct Dropped {
    pub id: i64,
    pub to: String,
    pub expired_at: i64,
    pub last_error: Option<String>,
}

/// Counts of the queue's states, for `portal mail status`.
#[derive(Debug, Default, serde::Serialize)]
pub struct QueueStatus {
    pub pending: i64,
    pub sent: i64,
    pub failed: Vec<(i64, String, String)>,
    pub dropped: Vec<Dropped>,
    pub health: Health,
}

pub async fn health(db: &Db) -> Result<Health, DbError> {
    db.read(|conn| read_health(conn).map_err(DbError::from))
        .await
}

fn read_health(conn: &Connection) -> rusqlite::Result<Health> {
    let (pending, oldest_pending_at) = conn.query_row(
        "SELECT count(*), min(created_at) FROM mail_queue WHERE sent_at IS NULL AND failed_at IS NULL",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (last_error, last_error_at) = conn
        .query_row(
            "SELECT last_error, last_error_at FROM mail_queue WHERE last_error_at IS NOT NULL
             ORDER BY last_error_at DESC, id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((None, None));
    let (last_sent_at, failed, dropped) = conn.query_row(
        "SELECT max(sent_at), count(failed_at) - count(dropped_at), count(dropped_at) FROM mail_queue",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(Health {
        pending,
        oldest_pending_at,
        last_error,
        last_error_at,
        last_sent_at,
        failed,
        dropped,
    })
}

pub async fn status(db: &Db) -> Result<QueueStatus, DbError> {
    db.read(|conn| {
        let health = read_health(conn)?;
        let sent = conn.query_row("SELECT count(*) FROM mail_queue WHERE sent_at IS NOT NULL", [], |r| r.get(0))?;
        let mut stmt = conn.prepare(
            "SELECT id, to_addr, coalesce(last_error, '') FROM mail_queue
             WHERE failed_at IS NOT NULL AND dropped_at IS NULL ORDER BY id",
        )?;
        let failed = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
        let mut stmt = conn.prepare(
            "SELECT id, to_addr, expires_at, last_error FROM mail_queue WHERE dropped_at IS NOT NULL ORDER BY id",
        )?;
        let dropped = stmt
            .query_map([], |r| {
                Ok(Dropped { id: r.get(0)?, to: r.get(1)?, expired_at: r.get(2)?, last_error: r.get(3)? })
            })?
            .collect::<Result<_, _>>()?;
        Ok::<_, DbError>(QueueStatus { pending: health.pending, sent, failed, dropped, health })
    })
    .await
}

/// "45 s", "12 min", "3 h 5 min", "2 days": how long ago `since` was.
pub fn age(since: i64) -> String {
    let s = (now() - since).max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} days", s / 86_400),
    }
}
