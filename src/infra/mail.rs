//! Outgoing mail through a persistent queue. Messages are rendered from theme
//! templates, stored in `mail_queue` inside the caller's transaction, and delivered
//! by a background worker over SMTP, or written to the outbox directory as `.eml`
//! files when no SMTP server is configured. Failures are retried with backoff and
//! logged; nothing is lost while the SMTP server is down.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rusqlite::{Connection, params};
use tokio::sync::Notify;

use crate::config::{Config, SmtpSecurity};
use crate::infra::db::{Db, DbError, now};
use crate::infra::render::RenderedEmail;

#[derive(Clone)]
pub struct Mailer {
    db: Db,
    from: Mailbox,
    transport: Arc<Transport>,
    wake: Arc<Notify>,
    max_attempts: u32,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

/// Puts a rendered email in the queue, inside the caller's transaction.
pub fn queue(conn: &Connection, to: &str, email: &RenderedEmail) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO mail_queue (to_addr, subject, text_body, html_body, created_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![to, email.subject, email.text, email.html, now()],
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
}

impl Mailer {
    pub fn new(config: &Config, db: Db) -> anyhow::Result<Self> {
        let from: Mailbox = config.mail.from.parse()?;
        let m = &config.mail;
        let transport = if m.smtp_host.is_empty() {
            Transport::Outbox(config.outbox_dir())
        } else {
            let builder = match m.smtp_security {
                SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&m.smtp_host)?,
                SmtpSecurity::Starttls => {
                    AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&m.smtp_host)?
                }
                SmtpSecurity::None => {
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&m.smtp_host)
                }
            };
            let mut builder = builder
                .port(m.smtp_port)
                .timeout(Some(Duration::from_secs(30)));
            if !m.smtp_username.is_empty() {
                builder = builder.credentials(Credentials::new(
                    m.smtp_username.clone(),
                    m.smtp_password.clone(),
                ));
            }
            Transport::Smtp(builder.build())
        };
        Ok(Mailer {
            db,
            from,
            transport: Arc::new(transport),
            wake: Arc::new(Notify::new()),
            max_attempts: config.mail.max_attempts,
        })
    }

    /// Where mail goes, for the start-up log line.
    pub fn describe(&self) -> String {
        match &*self.transport {
            Transport::Smtp(_) => "SMTP server".into(),
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

    /// Delivers queued mail until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let delivered = self.deliver_due().await;
            if delivered > 0 {
                continue;
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(15)) => {}
            }
        }
    }

    /// One pass over the due messages; returns how many were handled.
    pub async fn deliver_due(&self) -> usize {
        // Claimed in the writer's transaction (pushed 10 minutes into the future), so
        // the server's worker and a command such as `portal client add` never send
        // the same message twice; a crash mid-send retries it after the claim lapses.
        let due = self
            .db
            .write(|tx| {
                let mut stmt = tx.prepare(
                    "UPDATE mail_queue SET next_attempt_at = ?1 + 600
                     WHERE id IN (SELECT id FROM mail_queue
                                  WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?1
                                  ORDER BY id LIMIT 50)
                     RETURNING id, to_addr, subject, text_body, html_body, attempts",
                )?;
                let rows = stmt.query_map([now()], |r| {
                    Ok(Pending {
                        id: r.get(0)?,
                        to: r.get(1)?,
                        subject: r.get(2)?,
                        text: r.get(3)?,
                        html: r.get(4)?,
                        attempts: r.get(5)?,
                    })
                })?;
                rows.collect::<Result<Vec<_>, _>>().map_err(DbError::from)
            })
            .await;
        let due = match due {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "could not read the mail queue");
                return 0;
            }
        };
        let count = due.len();
        for message in due {
            let outcome = self.send(&message).await;
            self.record(message, outcome).await;
        }
        count
    }

    async fn send(&self, m: &Pending) -> Result<(), SendError> {
        let to: Mailbox =
            m.to.parse()
                .map_err(|e| SendError::Permanent(format!("bad address: {e}")))?;
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                m.text.clone(),
                m.html.clone(),
            ))
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        match &*self.transport {
            Transport::Smtp(smtp) => smtp.send(email).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    SendError::Permanent(e.to_string())
                } else {
                    SendError::Transient(e.to_string())
                }
            }),
            Transport::Outbox(dir) => {
                let path = dir.join(format!("{}-{:06}.eml", now(), m.id));
                let bytes = email.formatted();
                let target = path.clone();
                tokio::task::spawn_blocking(move || {
                    crate::infra::fsutil::write_atomic(&target, &bytes)
                })
                .await
                .map_err(|e| SendError::Transient(e.to_string()))?
                .map_err(|e| SendError::Transient(format!("{}: {e}", path.display())))?;
                tracing::info!(mail_id = m.id, path = %path.display(), "mail written to the outbox");
                Ok(())
            }
        }
    }

    async fn record(&self, m: Pending, outcome: Result<(), SendError>) {
        let max = self.max_attempts;
        let id = m.id;
        let attempts = m.attempts + 1;
        let result = self
            .db
            .write(move |tx| {
                match &outcome {
                    Ok(()) => tx.execute(
                        "UPDATE mail_queue SET sent_at = ?2, attempts = ?3, text_body = '', html_body = '', last_error = NULL
                         WHERE id = ?1",
                        params![id, now(), attempts],
                    )?,
                    Err(e) => {
                        let give_up = matches!(e, SendError::Permanent(_)) || attempts >= max;
                        let backoff = 30i64.saturating_mul(1 << attempts.min(7)).min(3600);
                        tx.execute(
                            "UPDATE mail_queue SET attempts = ?2, last_error = ?3, next_attempt_at = ?4,
                             failed_at = CASE WHEN ?5 THEN ?6 ELSE NULL END,
                             text_body = CASE WHEN ?5 THEN '' ELSE text_body END,
                             html_body = CASE WHEN ?5 THEN '' ELSE html_body END
                             WHERE id = ?1",
                            params![id, attempts, e.to_string(), now() + backoff, give_up, now()],
                        )?
                    }
                };
                Ok::<_, DbError>(outcome)
            })
            .await;
        match result {
            Ok(Ok(())) => tracing::info!(mail_id = id, "mail delivered"),
            Ok(Err(SendError::Permanent(e))) => {
                tracing::error!(mail_id = id, error = %e, "mail could not be delivered and was given up")
            }
            Ok(Err(SendError::Transient(e))) if attempts >= max => {
                tracing::error!(mail_id = id, attempts, error = %e, "mail delivery failed too often and was given up")
            }
            Ok(Err(SendError::Transient(e))) => {
                tracing::warn!(mail_id = id, attempts, error = %e, "mail delivery failed; will retry")
            }
            Err(e) => tracing::error!(mail_id = id, error = %e, "could not update the mail queue"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Permanent(String),
}

/// Counts of the queue's states, for `portal mail status`.
#[derive(Debug, Default, serde::Serialize)]
pub struct QueueStatus {
    pub pending: i64,
    pub sent: i64,
    pub failed: Vec<(i64, String, String)>,
}

pub async fn status(db: &Db) -> Result<QueueStatus, DbError> {
    db.read(|conn| {
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
        let pending = count("SELECT count(*) FROM mail_queue WHERE sent_at IS NULL AND failed_at IS NULL")?;
        let sent = count("SELECT count(*) FROM mail_queue WHERE sent_at IS NOT NULL")?;
        let mut stmt = conn.prepare(
            "SELECT id, to_addr, coalesce(last_error, '') FROM mail_queue WHERE failed_at IS NOT NULL ORDER BY id",
        )?;
        let failed = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
        Ok(QueueStatus { pending, sent, failed })
    })
    .await
}
