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
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::{Config, SmtpSecurity};
use crate::infra::db::{Db, DbError, now};
use crate::infra::render::RenderedEmail;
use crate::infra::smtp::{SmtpServer, Transcript, seconds};

mod health;
mod queue;
pub use health::{Dropped, Health, QueueStatus, age, health, status};
use queue::Pending;
pub use queue::{queue, queue_expiring};

/// How long a stopping portal lets an in-flight delivery finish before it
/// abandons it (the message stays queued).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Most messages one pass of the worker handles before it looks at the clock again.
const PASS_LIMIT: usize = 50;

/// The longest the worker sleeps between looks at the queue.
const IDLE_POLL: Duration = Duration::from_secs(15);

/// Days that sent, failed and dropped mail stays listed in `portal mail status`.
pub const HISTORY_DAYS: i64 = 30;

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
        let from: Mailbox = config.mail.from.get().clone();
        let m = &config.mail;
        let transport = if m.smtp_host.is_empty() {
            Transport::Outbox(config.outbox_dir())
        } else {
            let credentials = (!m.smtp_username.is_empty()).then(|| {
                Credentials::new(
                    m.smtp_username.clone(),
                    m.smtp_password.expose().to_string(),
                )
            });
            Transport::Smtp(SmtpServer::new(
                &m.smtp_host,
                m.smtp_port,
                m.smtp_security,
                credentials,
                Duration::from_secs(m.timeout_seconds.into()),
            )?)
        };
        let policy = Policy {
            max_attempts: m.max_attempts.get(),
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

    /// Forgets mail finished (sent, failed or dropped) more than
    /// [`HISTORY_DAYS`] ago. Run by the housekeeping job.
    pub async fn forget_old_history(&self) {
        let before = now() - HISTORY_DAYS * 86_400;
        let result = self
            .db
            .write(move |tx| queue::forget_finished_before(tx, before).map_err(DbError::from))
            .await;
        match result {
            Ok(0) => {}
            Ok(n) => tracing::info!(messages = n, "old mail history removed"),
            Err(e) => tracing::warn!(error = %e, "removing old mail history failed"),
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
        let next: Result<_, DbError> = self
            .db
            .read(|conn| queue::next_due(conn).map_err(DbError::from))
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

    /// Drops pending mail whose content expired (never sent late).
    async fn drop_expired(&self) {
        let dropped = self
            .db
            .write(|tx| queue::drop_expired(tx).map_err(DbError::from))
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

    async fn claim(&self, only_to: Option<String>) -> Result<Option<Pending>, DbError> {
        let lease = self.policy.lease();
        self.db
            .write(move |tx| queue::claim(tx, lease, only_to.as_deref()).map_err(DbError::from))
            .await
    }

    /// Makes a message claimed by an abandoned delivery due again at once.
    async fn release(&self, worker: &Worker) {
        let Some(id) = worker.in_flight() else {
            return;
        };
        let released = self
            .db
            .write(move |tx| queue::release(tx, id).map_err(DbError::from))
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
                    None => queue::mark_sent(tx, id, attempts)?,
                    Some((error, give_up, delay)) => {
                        queue::mark_failed(tx, id, attempts, error, *delay, *give_up)?
                    }
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
