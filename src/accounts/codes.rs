//! Multi-step flows and the access codes that confirm them. A flow lives in
//! `auth_flows` under the hash of a token the browser keeps in a cookie; each code
//! is stored as a keyed hash bound to its flow, used once, valid for a few minutes,
//! and a flow allows only a few wrong codes (a new code does not reset that count).

use std::time::Duration;

use minijinja::context;

use super::email::Email;
pub use super::repo::NewFlow;
use super::repo::{self, Flow};
use super::{AccountError, AccountResult};
use crate::ids::ClientId;
use crate::infra::audit::{self, Actor};
use crate::infra::crypto::{constant_time_eq, random_code, random_token, token_hash};
use crate::infra::db::now;
use crate::infra::mail;
use crate::infra::web::Visitor;
use crate::state::AppState;

/// What a flow is for. The strings are stored in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Signup,
    Signin,
    Reset,
    Merge,
    EmailChange,
    PinChange,
    Staff,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Signup => "signup",
            Purpose::Signin => "signin",
            Purpose::Reset => "reset",
            Purpose::Merge => "merge",
            Purpose::EmailChange => "email_change",
            Purpose::PinChange => "pin_change",
            Purpose::Staff => "staff",
        }
    }

    /// A flow of this purpose at `stage` for `email`, for nobody in particular yet.
    pub fn flow(self, stage: &'static str, email: &str) -> NewFlow {
        NewFlow {
            purpose: self.as_str(),
            stage,
            email: email.to_string(),
            name: None,
            client_id: None,
            staff_id: None,
            next_path: None,
        }
    }

    /// What the code email says the code is for.
    fn action(self) -> &'static str {
        match self {
            Purpose::Signup => "verify your email address and create your account",
            Purpose::Signin => "sign in",
            Purpose::Reset => "set a new PIN",
            Purpose::Merge => "add this address to your portal",
            Purpose::EmailChange => "make this your sign-in address",
            Purpose::PinChange => "confirm your new PIN",
            Purpose::Staff => "sign in",
        }
    }
}

/// How long a whole flow may take, start to finish.
const FLOW_LIFETIME_SECS: i64 = 30 * 60;
/// The shortest wait between two codes for one flow.
const RESEND_AFTER_SECS: i64 = 30;
/// The most codes one flow may send.
const MAX_CODES_PER_FLOW: i64 = 5;

pub struct Started {
    /// For the browser's cookie; only its hash is stored.
    pub token: String,
    pub flow: Flow,
}

pub async fn start(state: &AppState, new: NewFlow) -> AccountResult<Started> {
    let token = random_token();
    let hash = token_hash(&token);
    let flow = state
        .db
        .write(move |tx| {
            repo::insert_flow(tx, &hash, &new, FLOW_LIFETIME_SECS)?;
            repo::flow(tx, &hash)?.ok_or(AccountError::FlowExpired)
        })
        .await?;
    Ok(Started { token, flow })
}

/// The unexpired flow of this purpose behind the browser's token, if any.
pub async fn load(state: &AppState, token: Option<&str>, purpose: Purpose) -> AccountResult<Flow> {
    let Some(token) = token else {
        return Err(AccountError::FlowExpired);
    };
    let hash = token_hash(token);
    let flow = state
        .db
        .read(move |conn| repo::flow(conn, &hash).map_err(AccountError::from))
        .await?;
    match flow {
        Some(f) if f.purpose == purpose.as_str() => Ok(f),
        _ => Err(AccountError::FlowExpired),
    }
}

/// Keeps a secret on the flow until it finishes (a staff member's authenticator
/// being enrolled).
pub async fn set_pending_secret(
    state: &AppState,
    flow: &Flow,
    secret: String,
) -> AccountResult<()> {
    let hash = flow.token_hash.clone();
    state
        .db
        .write(move |tx| Ok(repo::set_flow_secret(tx, &hash, &secret)?))
        .await
}

/// Ends a flow inside the caller's transaction, once it has done its work.
pub fn finish(conn: &rusqlite::Connection, flow: &Flow) -> rusqlite::Result<()> {
    repo::delete_flow(conn, &flow.token_hash)
}

/// Who asks for a code, which decides the budgets the code email is charged to.
/// Anonymous traffic never spends the budget of someone who proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    /// Nobody has proven anything (sign-up, Forgot PIN). With `deliver` false the
    /// address may not get a code (no account, or not invited): nothing is sent
    /// and the address's budget is not touched, but the answer looks the same.
    Anonymous { deliver: bool },
    /// The holder of this client account proved it: the right PIN, a trusted
    /// device, or a signed-in session.
    Account(ClientId),
}

/// Sends a new code for `flow` to its address. When nothing is to be delivered
/// every per-flow limit and database write happens just the same, so the cases
/// look alike.
pub async fn send_code(
    state: &AppState,
    flow: &Flow,
    visitor: &Visitor,
    requester: Requester,
) -> AccountResult<()> {
    // A cheap early answer; the same checks are repeated on the row inside the
    // write below, where parallel requests cannot race past them.
    per_flow_limits(flow)?;
    let deliver = charge_budgets(state, flow, visitor, requester)?;
    let code = random_code();
    let code_hash = code_mac(state, &flow.token_hash, &code);
    let purpose = purpose_of(flow);
    let ttl_minutes = state.config.accounts.code_ttl_minutes;
    let rendered = state.email(
        "access_code",
        context! { code, action => purpose.action(), minutes => ttl_minutes, email => flow.email.clone() },
    )?;
    let flow_hash = flow.token_hash.clone();
    let to = flow.email.clone();
    let subject = flow.email.clone();
    let ip = visitor.ip.clone();
    state
        .db
        .write(move |tx| {
            let current = repo::flow(tx, &flow_hash)?.ok_or(AccountError::FlowExpired)?;
            per_flow_limits(&current)?;
            let stored = deliver.then_some(code_hash.as_slice());
            let expires_at = now() + i64::from(ttl_minutes) * 60;
            repo::set_flow_code(tx, &flow_hash, stored, expires_at)?;
            if deliver {
                // Mail that would arrive after the code expired is dropped, not sent late.
                mail::queue_expiring(tx, &to, &rendered, expires_at)?;
            }
            audit::record(
                tx,
                Actor::Visitor,
                "access_code_requested",
                &subject,
                purpose.as_str(),
                &ip,
            )?;
            Ok::<_, AccountError>(())
        })
        .await?;
    if deliver {
        state.mailer.wake();
    }
    Ok(())
}

const HOUR: Duration = Duration::from_secs(3600);

/// Charges the hourly budgets this code request spends and says whether the code
/// is to be delivered.
///
/// - Anonymous requests spend their IP's budget whether or not a code goes out
///   (so the refusal reads the same for every address), and the address's
///   anonymous budget only when a code is really sent. When that budget is
///   spent the code is silently not sent: saying so would tell a stranger
///   which addresses get codes.
/// - A proven account spends its own budget, which anonymous traffic cannot
///   touch. A code to an address that is not yet the account's (Merge Emails,
///   Update Email ID) also spends this account's budget for that address, so one
///   account cannot flood someone else's mailbox, nor use up what another
///   account may send to it.
fn charge_budgets(
    state: &AppState,
    flow: &Flow,
    visitor: &Visitor,
    requester: Requester,
) -> AccountResult<bool> {
    let cfg = &state.config.accounts;
    let email_key = super::email::Email::key_of(&flow.email);
    match requester {
        Requester::Anonymous { deliver } => {
            let ip_key = format!("code-anon-ip:{}", visitor.network());
            if !state
                .limiter
                .allow(&ip_key, cfg.codes_per_ip_per_hour.get(), HOUR)
            {
                tracing::warn!(ip = %visitor.ip, "access code refused: IP budget reached");
                return Err(AccountError::TooManyRequests);
            }
            let address_key = format!("code-anon-email:{email_key}");
            if deliver
                && !state
                    .limiter
                    .allow(&address_key, cfg.codes_per_email_per_hour.get(), HOUR)
            {
                tracing::warn!(ip = %visitor.ip, "access code not sent: address budget reached");
                return Ok(false);
            }
            Ok(deliver)
        }
        Requester::Account(client_id) => {
            let mut limits = vec![(
                format!("code-account:{client_id}"),
                cfg.codes_per_account_per_hour.get(),
            )];
            // Per account and address: another client asking for codes to the
            // same address must not use up this one's allowance for it.
            if matches!(purpose_of(flow), Purpose::Merge | Purpose::EmailChange) {
                limits.push((
                    format!("code-to-new:{client_id}:{email_key}"),
                    cfg.codes_per_email_per_hour.get(),
                ));
            }
            if !state.limiter.allow_all(&limits, HOUR) {
                tracing::warn!(ip = %visitor.ip, "access code refused: account budget reached");
                return Err(AccountError::CodeLimit);
            }
            Ok(true)
        }
    }
}

/// Whether a notice (not a code) may go to this address now. Spent only by
/// notices, and silent when spent, like an anonymous code.
pub fn allow_notice(state: &AppState, email_key: &str) -> bool {
    state.limiter.allow(
        &format!("notice-email:{email_key}"),
        state.config.accounts.codes_per_email_per_hour.get(),
        HOUR,
    )
}

/// Limits how many sign-in, sign-up, Forgot PIN or staff flows one address (an
/// IPv6 /64) may start per hour, so that nobody can fill the database with
/// abandoned attempts.
pub fn allow_new_flow(state: &AppState, visitor: &Visitor) -> AccountResult<()> {
    if state
        .limiter
        .allow(&format!("flow-ip:{}", visitor.network()), 300, HOUR)
    {
        Ok(())
    } else {
        Err(AccountError::TooManyRequests)
    }
}

/// At most one code every half minute, and a handful per flow.
fn per_flow_limits(flow: &Flow) -> AccountResult<()> {
    if let Some(last) = flow.last_code_at {
        let wait = last + RESEND_AFTER_SECS - now();
        if wait > 0 {
            return Err(AccountError::CodeTooSoon(wait));
        }
    }
    if flow.codes_sent >= MAX_CODES_PER_FLOW {
        return Err(AccountError::CodeLimit);
    }
    Ok(())
}

/// Checks a typed code against the flow's current code. On success the code is
/// spent and the flow moves to `next_stage`.
pub async fn verify_code(
    state: &AppState,
    flow: &Flow,
    typed: &str,
    next_stage: &str,
) -> AccountResult<()> {
    let max = i64::from(state.config.accounts.code_max_attempts.get());
    let typed: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let typed_mac = code_mac(state, &flow.token_hash, &typed);
    let (hash, stage, next) = (
        flow.token_hash.clone(),
        flow.stage.clone(),
        next_stage.to_string(),
    );
    // Decided inside the single writer's transaction on the row as it is now, so
    // that parallel guesses cannot all slip under the attempt limit, and a code
    // that has just been used cannot be used again.
    state
        .db
        .write(move |tx| {
            let Some(current) = repo::flow(tx, &hash)? else {
                return Ok(Err(AccountError::FlowExpired));
            };
            if current.stage != stage {
                return Ok(Err(AccountError::FlowExpired));
            }
            if current.code_failures >= max {
                return Ok(Err(AccountError::CodeAttemptsExhausted));
            }
            let matches = current
                .code_hash
                .as_deref()
                .is_some_and(|stored| constant_time_eq(&typed_mac, stored));
            let expired = current.code_expires_at.is_some_and(|at| at < now());
            if matches && !expired {
                repo::advance_flow(tx, &hash, &next)?;
                return Ok(Ok(()));
            }
            repo::flow_code_failed(tx, &hash)?;
            Ok::<_, AccountError>(Err(if matches {
                AccountError::ExpiredCode
            } else if current.code_failures + 1 >= max {
                AccountError::CodeAttemptsExhausted
            } else {
                AccountError::WrongCode
            }))
        })
        .await?
}

fn code_mac(state: &AppState, flow_hash: &[u8], code: &str) -> Vec<u8> {
    state.key.mac(&[b"access-code", flow_hash, code.as_bytes()])
}

fn purpose_of(flow: &Flow) -> Purpose {
    [
        Purpose::Signup,
        Purpose::Signin,
        Purpose::Reset,
        Purpose::Merge,
        Purpose::EmailChange,
        Purpose::PinChange,
        Purpose::Staff,
    ]
    .into_iter()
    .find(|p| p.as_str() == flow.purpose)
    .unwrap_or(Purpose::Signin)
}

/// Parses the address a flow is for (always valid: it was parsed when the flow began).
pub fn flow_email(flow: &Flow) -> AccountResult<Email> {
    Email::parse(&flow.email).map_err(AccountError::from)
}
