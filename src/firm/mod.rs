//! F1 staff sign-in (password + TOTP), the staff home, S3b portal requests, and
//! the staff-side client list and invitations (F2, first part).

pub mod password;
pub mod repo;
pub mod routes;
pub mod totp;

use std::time::Duration;

use minijinja::context;

use crate::accounts::codes::{self, NewFlow, Purpose, Started};
use crate::accounts::email::Email;
use crate::accounts::{AccountError, AccountResult, clean_name, throttle};
use crate::ids::StaffId;
use crate::infra::audit::{self, Actor};
use crate::infra::mail;
use crate::infra::web::Visitor;
use crate::state::AppState;
use repo::PortalRequest;
pub use repo::Staff;

impl Staff {
    /// This staff member, as the audit log names them.
    pub fn actor(&self) -> Actor {
        Actor::Staff(self.public_id.clone())
    }
}

/// Adds a staff member (from the command line). The password must meet the policy.
pub async fn add_staff(
    state: &AppState,
    email: &str,
    name: &str,
    password: &str,
) -> AccountResult<Staff> {
    let email = Email::parse(email)?;
    let name = clean_name(name, "name")?;
    password::check(password, &email.address).map_err(AccountError::Invalid)?;
    let hash = state.hash_secret(password.to_string()).await?;
    state
        .db
        .write(move |tx| {
            if repo::staff_by_email(tx, &email.key)?.is_some() {
                return Err(AccountError::Invalid(format!(
                    "A staff member with the address {} already exists.",
                    email.address
                )));
            }
            let id = repo::insert_staff(tx, &email.key, &email.address, &name, &hash)?;
            audit::record(tx, Actor::System, "staff_added", &email.address, "", "")?;
            repo::staff_by_id(tx, id)?.ok_or(AccountError::FlowExpired)
        })
        .await
}

/// The staff member with this address, or a message naming the address.
fn existing_staff(conn: &rusqlite::Connection, email: &Email) -> AccountResult<Staff> {
    repo::staff_by_email(conn, &email.key)?.ok_or_else(|| {
        AccountError::Invalid(format!(
            "No staff member has the address {}.",
            email.address
        ))
    })
}

/// Makes a staff member enrol a new authenticator at the next sign-in.
pub async fn reset_staff_totp(state: &AppState, email: &str) -> AccountResult<Staff> {
    lift_staff_lockout(state, email, true, "staff_totp_reset").await
}

/// Lifts a staff member's sign-in lockout after too many wrong passwords or codes.
pub async fn unlock_staff(state: &AppState, email: &str) -> AccountResult<Staff> {
    lift_staff_lockout(state, email, false, "staff_unlocked").await
}

/// Clears the staff member's throttles (after forgetting the authenticator if
/// `reset_totp`) and records `event`.
async fn lift_staff_lockout(
    state: &AppState,
    email: &str,
    reset_totp: bool,
    event: &'static str,
) -> AccountResult<Staff> {
    let email = Email::parse(email)?;
    state
        .db
        .write(move |tx| {
            let staff = existing_staff(tx, &email)?;
            if reset_totp {
                repo::reset_totp(tx, staff.id)?;
            }
            clear_staff_throttles(tx, &email.key)?;
            audit::record(tx, Actor::System, event, &staff.email, "", "")?;
            Ok(staff)
        })
        .await
}

pub async fn list_staff(state: &AppState) -> AccountResult<Vec<Staff>> {
    state.db.read(|conn| Ok(repo::list_staff(conn)?)).await
}

/// Email and password checked; the second factor comes next. Returns the flow and
/// whether the staff member must first enrol an authenticator.
pub async fn signin_password(
    state: &AppState,
    email: &str,
    password: &str,
    visitor: &Visitor,
) -> AccountResult<(Started, bool)> {
    let email = Email::parse(email)
        .map_err(|_| AccountError::Invalid("The email or password is not right.".into()))?;
    codes::allow_new_flow(state, visitor)?;
    let attempt = throttle::SecretAttempt {
        key: staff_key(&email.key, &visitor.network()),
        typed: password,
        address: &email.address,
        visitor,
        failed: ("staff_signin_failed", "wrong password"),
    };
    let email_key = email.key.clone();
    let holder = move |tx: &rusqlite::Connection| {
        Ok(repo::staff_by_email(tx, &email_key)?.filter(|s| s.disabled_at.is_none()))
    };
    let (staff, ok) = throttle::check_secret(
        state,
        attempt,
        holder,
        |staff: &Option<Staff>| staff.as_ref().map(|s| s.password_hash.clone()),
        |_| Actor::Visitor,
        |_| Ok(()),
    )
    .await
    .map_err(staff_lockout)?;
    let Some(staff) = staff.filter(|_| ok) else {
        return Err(AccountError::Invalid(
            "The email or password is not right.".into(),
        ));
    };
    // Said only after the right password: wrong authenticator codes lock the
    // account, and a right password does not lift that.
    let (second_key, cap) = (totp_key(&email.key), totp_cap(state));
    state
        .db
        .read(move |conn| throttle::check_capped(conn, &second_key, cap))
        .await
        .map_err(staff_lockout)?;
    let enrol = staff.totp_enabled_at.is_none();
    let stage = if enrol { "enrol" } else { "totp" };
    let started = codes::start(
        state,
        NewFlow {
            staff_id: Some(staff.id),
            ..Purpose::Staff.flow(stage, &staff.email)
        },
    )
    .await?;
    if enrol {
        codes::set_pending_secret(state, &started.flow, totp::new_secret()).await?;
    }
    Ok((started, enrol))
}

/// Wrong passwords count per address *and* client network (an IPv4 address or an
/// IPv6 /64): staff have no Forgot-PIN way out, so a stranger must not be able to
/// lock them out from elsewhere.
fn staff_key(email_key: &str, ip: &str) -> String {
    throttle::key("staff", &format!("{email_key}|{ip}"))
}

/// Wrong authenticator codes count per account, under a key of their own that
/// only a right code clears: whoever gets this far knows the password.
fn totp_key(email_key: &str) -> String {
    throttle::key("staff-totp", email_key)
}

fn totp_cap(state: &AppState) -> i64 {
    i64::from(state.config.accounts.staff_totp_max_failures.get())
}

fn clear_staff_throttles(tx: &rusqlite::Connection, email_key: &str) -> rusqlite::Result<()> {
    throttle::clear_prefix(tx, &staff_key(email_key, ""))?;
    throttle::clear(tx, &totp_key(email_key))
}

fn staff_lockout(e: AccountError) -> AccountError {
    match e {
        AccountError::Locked(m) => AccountError::Invalid(format!(
            "Too many wrong attempts. Try again in {}.",
            crate::accounts::minutes(m)
        )),
        AccountError::LockedUntilReset => AccountError::Invalid(
            "Too many wrong attempts. Ask an administrator to unlock your account.".into(),
        ),
        other => other,
    }
}

/// What the second-factor page needs: the staff member, and during enrolment the
/// secret with its QR code.
pub struct SecondFactor {
    pub staff: Staff,
    pub enrol: Option<totp::Enrolment>,
}

pub async fn second_factor(state: &AppState, token: Option<&str>) -> AccountResult<SecondFactor> {
    let flow = codes::load(state, token, Purpose::Staff).await?;
    let id = flow.staff_id.ok_or(AccountError::FlowExpired)?;
    let staff = state
        .db
        .read(move |conn| Ok::<_, AccountError>(repo::staff_by_id(conn, id)?))
        .await?
        .ok_or(AccountError::FlowExpired)?;
    let enrol = match (flow.stage.as_str(), flow.pending_secret) {
        ("enrol", Some(secret)) => Some(totp::enrolment(
            &secret,
            &state.config.firm.name,
            &staff.email,
        )?),
        ("totp", _) => None,
        _ => return Err(AccountError::FlowExpired),
    };
    Ok(SecondFactor { staff, enrol })
}

/// The TOTP code checked (each code works once); the staff session starts.
pub async fn signin_totp(
    state: &AppState,
    token: Option<&str>,
    code: &str,
    visitor: &Visitor,
) -> AccountResult<String> {
    let flow = codes::load(state, token, Purpose::Staff).await?;
    let factor = second_factor(state, token).await?;
    let staff = factor.staff;
    let key = totp_key(&crate::accounts::email::Email::key_of(&staff.email));
    let secret = match &factor.enrol {
        Some(e) => e.secret.clone(),
        None => staff.totp_secret.clone().ok_or(AccountError::FlowExpired)?,
    };
    let code = code.to_string();
    let (st, v, after, cap, enrolling) = (
        state.clone(),
        visitor.clone(),
        state.config.accounts.lockout_after.get(),
        totp_cap(state),
        factor.enrol.is_some(),
    );
    let result = state
        .db
        .write(move |tx| {
            // The authenticator as it is now: an enrolment page left open must not
            // replace one set up meanwhile, nor a reset one keep working.
            let Some(current) = repo::staff_by_id(tx, staff.id)? else {
                return Ok(Err(AccountError::FlowExpired));
            };
            if !authenticator_unchanged(&current, enrolling, &secret) {
                return Ok(Err(AccountError::FlowExpired));
            }
            // Counted and checked against the newest used step in one transaction,
            // so parallel guesses and replays cannot slip through.
            let failures = match throttle::begin_capped(tx, &key, after, cap) {
                Ok(n) => n,
                Err(e) => return Ok(Err(staff_lockout(e))),
            };
            let Some(step) = totp::verify(&secret, &code, current.totp_last_step)? else {
                return totp_failed(tx, &st, &staff, failures, &v).map(Err);
            };
            throttle::clear(tx, &key)?;
            if enrolling {
                repo::enable_totp(tx, staff.id, &secret, step)?;
            } else {
                repo::set_totp_step(tx, staff.id, step)?;
            }
            let token = crate::accounts::session::open(
                tx,
                &st,
                crate::accounts::session::Subject::Staff(staff.id),
                &v,
            )?;
            codes::finish(tx, &flow)?;
            let detail = if enrolling {
                "authenticator enrolled"
            } else {
                ""
            };
            audit::record(
                tx,
                staff.actor(),
                "staff_signin",
                &staff.email,
                detail,
                &v.ip,
            )?;
            Ok::<_, AccountError>(Ok(token))
        })
        .await?;
    if result.is_err() {
        // The failure may have locked the account and queued the email saying so.
        state.mailer.wake();
    }
    result
}

/// Whether the authenticator a second-factor page was shown for is still the
/// account's: no other was enrolled since an enrolment page was opened, and the
/// one being checked was not reset.
fn authenticator_unchanged(current: &Staff, enrolling: bool, secret: &str) -> bool {
    if enrolling {
        current.totp_enabled_at.is_none()
    } else {
        current.totp_secret.as_deref() == Some(secret)
    }
}

/// Records a wrong authenticator code. The one that reaches the ceiling locks the
/// account until `portal staff unlock` and emails the staff member, whose
/// password is evidently known to whoever is guessing.
fn totp_failed(
    tx: &rusqlite::Connection,
    state: &AppState,
    staff: &Staff,
    failures: i64,
    visitor: &Visitor,
) -> AccountResult<AccountError> {
    audit::record(
        tx,
        staff.actor(),
        "staff_signin_failed",
        &staff.email,
        "wrong TOTP code",
        &visitor.ip,
    )?;
    if failures < totp_cap(state) {
        return Ok(AccountError::Invalid(
            "That code is not right. Use the current code from your authenticator app.".into(),
        ));
    }
    let notice = state.email(
        "staff_totp_locked",
        context! { email => staff.email.clone(), failures, ip => visitor.ip.clone() },
    )?;
    mail::queue(tx, &staff.email, &notice)?;
    let detail = format!("{failures} wrong TOTP codes in a row");
    audit::record(
        tx,
        staff.actor(),
        "staff_locked",
        &staff.email,
        &detail,
        &visitor.ip,
    )?;
    Ok(staff_lockout(AccountError::LockedUntilReset))
}

pub async fn staff_by_id(state: &AppState, id: StaffId) -> AccountResult<Option<Staff>> {
    state
        .db
        .read(move |conn| Ok(repo::staff_by_id(conn, id)?))
        .await
}

// ---- S3b portal requests ----

/// A visitor asks for a portal. The answer is the same whatever happens next;
/// staff are emailed.
pub async fn request_portal(
    state: &AppState,
    name: &str,
    email: &str,
    phone: &str,
    message: &str,
    visitor: &Visitor,
) -> AccountResult<()> {
    let name = clean_name(name, "name")?;
    let email = Email::parse(email)?;
    let phone = crate::infra::text::strip_invisible(phone)
        .trim()
        .chars()
        .take(40)
        .collect::<String>();
    let message = message.trim().chars().take(2000).collect::<String>();
    if !state.limiter.allow(
        &format!("portal-request:{}", visitor.network()),
        5,
        Duration::from_secs(3600),
    ) {
        return Err(AccountError::TooManyRequests);
    }
    let notice = state.email(
        "portal_request",
        context! { name => name.clone(), email => email.address.clone(), phone => phone.clone(), message => message.clone() },
    )?;
    let configured = state.config.mail.staff_notify.clone();
    let ip = visitor.ip.clone();
    state
        .write_and_mail(move |tx| {
            repo::insert_request(tx, &name, &email.address, &phone, &message)?;
            let recipients = if configured.is_empty() {
                repo::list_staff(tx)?
                    .into_iter()
                    .filter(|s| s.disabled_at.is_none())
                    .map(|s| s.email)
                    .collect()
            } else {
                configured
            };
            for to in recipients {
                mail::queue(tx, &to, &notice)?;
            }
            audit::record(
                tx,
                Actor::Visitor,
                "portal_requested",
                &email.address,
                "",
                &ip,
            )?;
            Ok::<_, AccountError>(())
        })
        .await?;
    Ok(())
}

pub async fn open_requests(state: &AppState) -> AccountResult<Vec<PortalRequest>> {
    state.db.read(|conn| Ok(repo::open_requests(conn)?)).await
}

/// Staff invite the visitor who asked (or dismiss the request).
pub async fn handle_request(
    state: &AppState,
    staff: &Staff,
    request_id: &str,
    invite: bool,
    ip: &str,
) -> AccountResult<()> {
    let id = request_id.to_string();
    let request = state
        .db
        .read(move |conn| Ok::<_, AccountError>(repo::open_request(conn, &id)?))
        .await?
        .ok_or_else(|| AccountError::Invalid("That request was already handled.".into()))?;
    let actor = staff.actor();
    let outcome = if invite {
        match crate::accounts::invite::invite_client(
            state,
            &request.name,
            &request.email,
            actor.clone(),
            ip,
        )
        .await
        {
            Ok(_) => "invited",
            Err(AccountError::EmailTaken) => "already a client",
            Err(e) => return Err(e),
        }
    } else {
        "dismissed"
    };
    let ip = ip.to_string();
    state
        .db
        .write(move |tx| {
            repo::close_request(tx, request.id, outcome)?;
            audit::record(
                tx,
                actor,
                "portal_request_handled",
                &request.email,
                outcome,
                &ip,
            )?;
            Ok::<_, AccountError>(())
        })
        .await
}
