//! One SMTP conversation with a time limit on every step.
//!
//! lettre's async transport only times out the TCP connect: a server that accepts
//! the connection and then never answers (a stuck relay, a black-holing firewall,
//! a stalled TLS handshake) would hold a delivery forever. Here each step
//! (connecting, the greeting, EHLO, STARTTLS, AUTH, MAIL FROM, RCPT TO, DATA, the
//! message) gets `step_timeout`, the whole conversation a deadline, and an error
//! names the step that failed and why.

use std::future::Future;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::Error as LettreError;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::config::SmtpSecurity;

/// How long QUIT may take once the message was accepted or refused.
const QUIT_WAIT: Duration = Duration::from_secs(1);

/// Something told as the conversation goes: a step that succeeded and the server's reply.
pub type Transcript<'a> = &'a mut (dyn FnMut(Step, String) + Send);

/// An SMTP server and how to talk to it.
#[derive(Clone)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub step_timeout: Duration,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
}

/// The steps of a conversation, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Connect,
    /// Implicit TLS: connecting, the TLS handshake, the greeting and EHLO at once.
    ConnectTls,
    Greeting,
    Hello,
    StartTls,
    Auth,
    MailFrom,
    RcptTo,
    Data,
    Message,
}

impl Step {
    /// The step's short name, as in a transcript.
    pub fn label(self) -> &'static str {
        match self {
            Step::Connect => "connect",
            Step::ConnectTls => "connect (TLS)",
            Step::Greeting => "greeting",
            Step::Hello => "EHLO",
            Step::StartTls => "STARTTLS",
            Step::Auth => "AUTH",
            Step::MailFrom => "MAIL FROM",
            Step::RcptTo => "RCPT TO",
            Step::Data => "DATA",
            Step::Message => "message",
        }
    }

    /// What was going on during the step, for "no answer within 10 s while ...".
    fn doing(self) -> &'static str {
        match self {
            Step::Connect => "connecting to the server",
            Step::ConnectTls => "connecting over TLS (handshake, greeting and EHLO)",
            Step::Greeting => "waiting for the server's greeting",
            Step::Hello => "waiting for the reply to EHLO",
            Step::StartTls => "switching to TLS (STARTTLS)",
            Step::Auth => "signing in to the server (AUTH)",
            Step::MailFrom => "waiting for the reply to MAIL FROM",
            Step::RcptTo => "waiting for the reply to RCPT TO",
            Step::Data => "waiting for the reply to DATA",
            Step::Message => "sending the message",
        }
    }

    /// Steps before MAIL FROM concern the server, not one message.
    fn is_server_level(self) -> bool {
        matches!(
            self,
            Step::Connect
                | Step::ConnectTls
                | Step::Greeting
                | Step::Hello
                | Step::StartTls
                | Step::Auth
        )
    }
}

#[derive(Debug)]
pub enum Failure {
    /// No answer within this time.
    TimedOut(Duration),
    /// The server answered with an error reply.
    Refused { permanent: bool, reply: String },
    /// The connection failed (refused, reset, TLS error, closed early...).
    Failed(String),
}

/// Why a conversation failed: the step and what happened.
#[derive(Debug)]
pub struct SmtpError {
    pub step: Step,
    pub failure: Failure,
}

impl std::fmt::Display for SmtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.failure {
            Failure::TimedOut(limit) => {
                write!(
                    f,
                    "no answer within {} while {}",
                    seconds(*limit),
                    self.step.doing()
                )
            }
            Failure::Refused { reply, .. } => {
                write!(f, "the server refused {}: {reply}", self.step.label())
            }
            Failure::Failed(why) => write!(f, "{} failed: {why}", self.step.doing()),
        }
    }
}

impl std::error::Error for SmtpError {}

impl SmtpError {
    /// Retrying will not help: the server refused this message for good. A refusal
    /// of the connection or the sign-in is not permanent: the admin can fix it.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self.failure,
            Failure::Refused {
                permanent: true,
                ..
            }
        ) && !self.step.is_server_level()
    }

    /// The server cannot take mail right now (it is down, hung or refusing
    /// connections), so other messages would fail the same way.
    pub fn server_unavailable(&self) -> bool {
        matches!(self.failure, Failure::TimedOut(_)) || self.step.is_server_level()
    }

    fn at(step: Step, failure: Failure) -> Self {
        SmtpError { step, failure }
    }

    fn from_lettre(step: Step, e: &LettreError) -> Self {
        let failure = match e.status() {
            Some(code) => {
                let text = std::error::Error::source(e)
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                Failure::Refused {
                    permanent: e.is_permanent(),
                    reply: format!("{code} {text}").trim().to_string(),
                }
            }
            None => Failure::Failed(e.to_string()),
        };
        SmtpError::at(step, failure)
    }
}

/// "10 s", "2.5 s".
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

fn reply(r: &Response) -> String {
    let text: Vec<&str> = r.message().collect();
    format!("{} {}", r.code(), text.first().copied().unwrap_or(""))
        .trim()
        .to_string()
}

impl SmtpServer {
    pub fn new(
        host: &str,
        port: u16,
        security: SmtpSecurity,
        credentials: Option<Credentials>,
        step_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let tls = match security {
            SmtpSecurity::None => None,
            SmtpSecurity::Tls | SmtpSecurity::Starttls => Some(
                TlsParameters::new(host.to_string())
                    .map_err(|e| anyhow::anyhow!("mail.smtp_host {host:?}: {e}"))?,
            ),
        };
        Ok(SmtpServer {
            host: host.to_string(),
            port,
            security,
            step_timeout,
            tls,
            credentials,
        })
    }

    /// Delivers `message` to the server, every step within `step_timeout` and the
    /// whole before `deadline`. Steps that succeed are told to `log`.
    pub async fn send(
        &self,
        envelope: &Envelope,
        message: &[u8],
        deadline: Instant,
        log: Transcript<'_>,
    ) -> Result<(), SmtpError> {
        let mut conn = self.open(deadline, log).await?;
        let result = self
            .transfer(&mut conn, envelope, message, deadline, log)
            .await;
        let answered = !matches!(
            result,
            Err(SmtpError {
                failure: Failure::TimedOut(_),
                ..
            })
        );
        if answered {
            let wait = QUIT_WAIT.min(deadline.saturating_duration_since(Instant::now()));
            let _ = tokio::time::timeout(wait, conn.quit()).await;
        }
        result
    }

    /// Connects, reads the greeting, says EHLO, switches to TLS and signs in as configured.
    async fn open(
        &self,
        deadline: Instant,
        log: Transcript<'_>,
    ) -> Result<AsyncSmtpConnection, SmtpError> {
        let hello = ClientId::default();
        let address = format!("{}:{}", self.host, self.port);
        let mut conn = if self.security == SmtpSecurity::Tls {
            let connect = AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(self.step_timeout),
                &hello,
                self.tls.clone(),
                None,
            );
            let conn = self.step(Step::ConnectTls, deadline, connect).await?;
            log(Step::ConnectTls, format!("{address}, encrypted"));
            conn
        } else {
            let connect = TcpStream::connect((self.host.as_str(), self.port));
            let tcp = self.io_step(Step::Connect, deadline, connect).await?;
            log(Step::Connect, address);
            log(Step::Greeting, self.greeting(&tcp, deadline).await?);
            let ehlo = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello);
            let conn = self.step(Step::Hello, deadline, ehlo).await?;
            log(Step::Hello, format!("250 {}", conn.server_info().name()));
            conn
        };
        if self.security == SmtpSecurity::Starttls {
            if !conn.can_starttls() {
                return Err(SmtpError::at(
                    Step::StartTls,
                    Failure::Failed(
                        "the server does not offer STARTTLS (mail.smtp_security = \"starttls\")"
                            .into(),
                    ),
                ));
            }
            let tls = self.tls.clone().ok_or_else(|| {
                SmtpError::at(Step::StartTls, Failure::Failed("no TLS settings".into()))
            })?;
            self.step(Step::StartTls, deadline, conn.starttls(tls, &hello))
                .await?;
            log(Step::StartTls, "encrypted".into());
        }
        if let Some(credentials) = &self.credentials {
            let signed_in = conn.auth(DEFAULT_MECHANISMS, credentials);
            let r = self.step(Step::Auth, deadline, signed_in).await?;
            log(Step::Auth, reply(&r));
        }
        Ok(conn)
    }

    /// Waits for the server's first line without consuming it (lettre reads it
    /// next), so that a silent server is told apart from one that ignores EHLO.
    async fn greeting(&self, tcp: &TcpStream, deadline: Instant) -> Result<String, SmtpError> {
        let mut buf = [0u8; 512];
        let n = self
            .io_step(Step::Greeting, deadline, tcp.peek(&mut buf))
            .await?;
        let text = String::from_utf8_lossy(&buf[..n]);
        let line = text.lines().next().unwrap_or("").trim().to_string();
        match line.chars().next() {
            None => Err(SmtpError::at(
                Step::Greeting,
                Failure::Failed("the server closed the connection without a greeting".into()),
            )),
            Some(c @ ('4' | '5')) => Err(SmtpError::at(
                Step::Greeting,
                Failure::Refused {
                    permanent: c == '5',
                    reply: line,
                },
            )),
            Some(_) => Ok(line),
        }
    }

    async fn transfer(
        &self,
        conn: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        message: &[u8],
        deadline: Instant,
        log: Transcript<'_>,
    ) -> Result<(), SmtpError> {
        let options = mail_options(conn, envelope, message)?;
        let mail = conn.command(Mail::new(envelope.from().cloned(), options));
        let r = self.step(Step::MailFrom, deadline, mail).await?;
        log(Step::MailFrom, reply(&r));
        for to in envelope.to() {
            let rcpt = conn.command(Rcpt::new(to.clone(), vec![]));
            let r = self.step(Step::RcptTo, deadline, rcpt).await?;
            log(Step::RcptTo, reply(&r));
        }
        let r = self.step(Step::Data, deadline, conn.command(Data)).await?;
        log(Step::Data, reply(&r));
        let r = self
            .step(Step::Message, deadline, conn.message(message))
            .await?;
        log(Step::Message, reply(&r));
        Ok(())
    }

    /// Runs one step within its time limit (and what is left before `deadline`).
    async fn within<F: Future>(
        &self,
        step: Step,
        deadline: Instant,
        fut: F,
    ) -> Result<F::Output, SmtpError> {
        let limit = self
            .step_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| SmtpError::at(step, Failure::TimedOut(limit)))
    }

    async fn step<T>(
        &self,
        step: Step,
        deadline: Instant,
        fut: impl Future<Output = Result<T, LettreError>>,
    ) -> Result<T, SmtpError> {
        self.within(step, deadline, fut)
            .await?
            .map_err(|e| SmtpError::from_lettre(step, &e))
    }

    async fn io_step<T>(
        &self,
        step: Step,
        deadline: Instant,
        fut: impl Future<Output = std::io::Result<T>>,
    ) -> Result<T, SmtpError> {
        self.within(step, deadline, fut)
            .await?
            .map_err(|e| SmtpError::at(step, Failure::Failed(e.to_string())))
    }
}

/// SMTPUTF8 and 8BITMIME when the envelope or the message needs them (as lettre does).
fn mail_options(
    conn: &AsyncSmtpConnection,
    envelope: &Envelope,
    message: &[u8],
) -> Result<Vec<MailParameter>, SmtpError> {
    let unsupported = |what: &str| {
        SmtpError::at(
            Step::MailFrom,
            Failure::Refused {
                permanent: true,
                reply: format!("the server does not support {what}"),
            },
        )
    };
    let info = conn.server_info();
    let mut options = Vec::new();
    let ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .all(|a| AsRef::<str>::as_ref(a).is_ascii());
    if !ascii {
        if !info.supports_feature(Extension::SmtpUtfEight) {
            return Err(unsupported("SMTPUTF8, needed for a non-ASCII address"));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !message.is_ascii() {
        if !info.supports_feature(Extension::EightBitMime) {
            return Err(unsupported("8BITMIME, needed for this message"));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Ok(options)
}
