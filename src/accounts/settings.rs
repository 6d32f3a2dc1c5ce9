//! S5 Security Settings: merge emails, update PIN, update email, devices and sessions.

use minijinja::context;

use super::codes::{self, FlowStart, Purpose, Requester, Started};
use super::email::Email;
use super::repo::{self, Client, ClientEmail, Device, SessionInfo};
use super::session::{self, Subject};
use super::{AccountError, AccountResult, pin, throttle};
use crate::error::AppResult;
use crate::ids::ClientId;
use crate::infra::audit;
use crate::infra::crypto::token_hash;
use crate::infra::db::DbError;
use crate::infra::mail;
use crate::infra::web::Visitor;
use crate::state::AppState;

#[derive(serde::Serialize)]
pub struct Overview {
    pub emails: Vec<ClientEmail>,
    pub devices: Vec<Device>,
    pub sessions: Vec<SessionInfo>,
}

pub async fn overview(
    state: &AppState,
    client_id: ClientId,
    session_token: &str,
    device_token: Option<&str>,
) -> AppResult<Overview> {
    let session = token_hash(session_token);
    let device = device_token.map(token_hash);
    Ok(state
        .db
        .read(move |conn| {
            Ok::<_, DbError>(Overview {
                emails: repo::client_emails(conn, client_id)?,
                devices: repo::client_devices(conn, client_id, device.as_deref())?,
                sessions: repo::client_sessions(conn, client_id, &session)?,
            })
        })
        .await?)
}

/// A flow of `purpose` that belongs to this client, or `FlowExpired`.
async fn own_flow(
    state: &AppState,
    client: &Client,
    token: Option<&str>,
    purpose: Purpose,
) -> AccountResult<repo::Flow> {
    let flow = codes::load(state, token, purpose).await?;
    if flow.client_id != Some(client.id) {
        return Err(AccountError::FlowExpired);
    }
    Ok(flow)
}

// ---- Merge Emails ----

/// "Add": a code goes to the other address. Whether that address is free is only
/// said after its owner has proven it with the code.
pub async fn merge_start(
    state: &AppState,
    client: &Client,
    email: &str,
    visitor: &Visitor,
) -> AccountResult<Started> {
    let email = Email::parse(email)?;
    let (key, id) = (email.key.clone(), client.id);
    let owner = state
        .db
        .read(move |conn| repo::email_owner(conn, &key).map_err(AccountError::from))
        .await?;
    if owner.is_some_and(|(owner, _)| owner == id) {
        return Err(AccountError::Invalid(
            "That address is already part of your portal.".into(),
        ));
    }
    let started = codes::start(
        state,
        FlowStart {
            purpose: Purpose::Merge,
            stage: "code",
            email: &email.address,
            name: None,
            client_id: Some(client.id),
            staff_id: None,
            next_path: None,
        },
    )
    .await?;
    codes::send_code(state, &started.flow, visitor, Requester::Account(client.id)).await?;
    Ok(started)
}

pub async fn merge_resend(
    state: &AppState,
    client: &Client,
    token: Option<&str>,
    visitor: &Visitor,
) -> AccountResult<repo::Flow> {
    let flow = own_flow(state, client, token, Purpose::Merge).await?;
    codes::send_code(state, &flow, visitor, Requester::Account(client.id)).await?;
    Ok(flow)
}

/// "Verify Code": the address joins this portal as a merged address.
pub async fn merge_finish(
    state: &AppState,
    client: &Client,
    token: Option<&str>,
    code: &str,
    visitor: &Visitor,
) -> AccountResult<String> {
    let flow = own_flow(state, client, token, Purpose::Merge).await?;
    codes::verify_code(state, &flow, code, "done").await?;
    let email = codes::flow_email(&flow)?;
    let notice = state.email("email_added", context! { added => email.address.clone() })?;
    let (c, v) = (client.clone(), visitor.clone());
    let added = state
        .db
        .write(move |tx| {
            repo::delete_flow(tx, &flow.token_hash)?;
            if repo::email_owner(tx, &email.key)?.is_some() {
                return Ok(Err(AccountError::EmailTaken));
            }
            repo::add_merged_email(tx, c.id, &email)?;
            mail::queue(tx, &c.email, &notice)?;
            audit::record(tx, c.actor(), "email_merged", &email.address, "", &v.ip)?;
            Ok::<_, AccountError>(Ok(email.address.clone()))
        })
        .await??;
    state.mailer.wake();
    Ok(added)
}

/// Re-authentication before a change of PIN or email: the current PIN, counted
/// against the same lockout as sign-in.
async fn confirm_current_pin(
    state: &AppState,
    client: &Client,
    current: &str,
    failure_event: &'static str,
    visitor: &Visitor,
) -> AccountResult<()> {
    let key = throttle::key("pin", &client.email.to_lowercase());
    let (attempt_key, after) = (key.clone(), state.config.accounts.lockout_after);
    state
        .db
        .write(move |tx| throttle::begin(tx, &attempt_key, after))
        .await?;
    let ok = state
        .verify_secret(current.trim().to_string(), client.pin_hash.clone())
        .await?;
    let (c, v) = (client.clone(), visitor.clone());
    state
        .db
        .write(move |tx| {
            if ok {
                throttle::clear(tx, &key)?;
            } else {
                audit::record(
                    tx,
                    c.actor(),
                    failure_event,
                    &c.email,
                    "wrong current PIN",
                    &v.ip,
                )?;
            }
            Ok::<_, AccountError>(())
        })
        .await?;
    if ok {
        Ok(())
    } else {
        Err(AccountError::WrongCurrentPin)
    }
}

// ---- Update PIN ----

/// Current PIN, New PIN, Confirm: checked, then a code to the sign-in address
/// confirms the change.
pub async fn pin_change_start(
    state: &AppState,
    client: &Client,
    current: &str,
    new_pin: &str,
    confirm: &str,
    visitor: &Visitor,
) -> AccountResult<Started> {
    let email = Email::parse(&client.email)?;
    confirm_current_pin(state, client, current, "pin_change_failed", visitor).await?;
    let pin = pin::check_new(new_pin, confirm)?;
    let pin_hash = state.hash_secret(pin).await?;
    let started = codes::start(
        state,
        FlowStart {
            purpose: Purpose::PinChange,
            stage: "code",
            email: &email.address,
            name: None,
            client_id: Some(client.id),
            staff_id: None,
            next_path: None,
        },
    )
    .await?;
    let flow_hash = started.flow.token_hash.clone();
    state
        .db
        .write(move |tx| {
            repo::set_flow_secret(tx, &flow_hash, &pin_hash).map_err(AccountError::from)
        })
        .await?;
    codes::send_code(state, &started.flow, visitor, Requester::Account(client.id)).await?;
    Ok(started)
}

pub async fn pin_change_resend(
    state: &AppState,
    client: &Client,
    token: Option<&str>,
    visitor: &Visitor,
) -> AccountResult<repo::Flow> {
    let flow = own_flow(state, client, token, Purpose::PinChange).await?;
    codes::send_code(state, &flow, visitor, Requester::Account(client.id)).await?;
    Ok(flow)
}

/// New tokens for this browser after a PIN change ended every other session.
pub struct Renewed {
    pub session_token: String,
    pub device_token: String,
}

/// The code confirmed: the new PIN takes effect, every other session and every
/// trusted device ends, this browser gets a fresh session, and the address is told.
pub async fn pin_change_finish(
    state: &AppState,
    client: &Client,
    token: Option<&str>,
    code: &str,
    visitor: &Visitor,
) -> AccountResult<Renewed> {
    let flow = own_flow(state, client, token, Purpose::PinChange).await?;
    // The code went to the sign-in address of the time; if that has changed
    // since, it proves nothing about the address the account has now.
    if flow.email.to_lowercase() != client.email.to_lowercase() {
        return Err(AccountError::AddressMoved);
    }
    let pin_hash = flow
        .pending_secret
        .clone()
        .ok_or(AccountError::FlowExpired)?;
    codes::verify_code(state, &flow, code, "done").await?;
    let notice = state.email(
        "pin_changed",
        context! { email => client.email.clone(), reset => false },
    )?;
    let (c, v, st) = (client.clone(), visitor.clone(), state.clone());
    let renewed = state
        .db
        .write(move |tx| {
            repo::set_pin(tx, c.id, &pin_hash)?;
            repo::delete_client_sessions(tx, c.id, None)?;
            repo::delete_client_devices(tx, c.id)?;
            let session_token = session::open(tx, &st, Subject::Client(c.id), &v)?;
            let device_token = session::trust_device(tx, &st, c.id, None, &v)?;
            repo::delete_flow(tx, &flow.token_hash)?;
            mail::queue(tx, &c.email, &notice)?;
            audit::record(
                tx,
                c.actor(),
                "pin_changed",
                &c.email,
                "other sessions and trusted devices ended",
                &v.ip,
            )?;
            Ok::<_, AccountError>(Renewed {
                session_token,
                device_token,
            })
        })
        .await?;
    state.mailer.wake();
    Ok(renewed)
}

// ---- Update Email ID ----

/// "Update": the current PIN re-authenticates, then a code goes to the new address.
pub async fn email_change_start(
    state: &AppState,
    client: &Client,
    current_pin: &str,
    new_email: &str,
    visitor: &Visitor,
) -> AccountResult<Started> {
    let email = Email::parse(new_email)?;
    if email.key == client.email.to_lowercase() {
        return Err(AccountError::Invalid(
            "That is already your sign-in address.".into(),
        ));
    }
    confirm_current_pin(state, client, current_pin, "email_change_failed", visitor).await?;
    let started = codes::start(
        state,
        FlowStart {
            purpose: Purpose::EmailChange,
            stage: "code",
            email: &email.address,
            name: None,
            client_id: Some(client.id),
            staff_id: None,
            next_path: None,
        },
    )
    .await?;
    codes::send_code(state, &started.flow, visitor, Requester::Account(client.id)).await?;
    Ok(started)
}

pub async fn email_change_resend(
    state: &AppState,
    client: &Client,
    token: Option<&str>,
    visitor: &Visitor,
) -> AccountResult<repo::Flow> {
    let flow = own_flow(state, client, token, Purpose::EmailChange).await?;
    codes::send_code(state, &flow, visitor, Requester::Account(client.id)).await?;
    Ok(flow)
}

/// The code sent to the new address confirmed: it becomes the sign-in address and
/// the old address is told where sign-in moved.
pub async fn email_change_finish(
    state: &AppState,
    client: &Client,
    token: Option<&str>,
    code: &str,
    visitor: &Visitor,
) -> AccountResult<String> {
    let flow = own_flow(state, client, token, Purpose::EmailChange).await?;
    codes::verify_code(state, &flow, code, "done").await?;
    let email = codes::flow_email(&flow)?;
    let notice = state.email(
        "email_changed",
        context! { old => client.email.clone(), new_masked => email.masked() },
    )?;
    let (c, v) = (client.clone(), visitor.clone());
    let changed = state
        .db
        .write(move |tx| {
            repo::delete_flow(tx, &flow.token_hash)?;
            if repo::email_owner(tx, &email.key)?.is_some_and(|(owner, _)| owner != c.id) {
                return Ok(Err(AccountError::EmailTaken));
            }
            repo::replace_primary_email(tx, c.id, &email)?;
            mail::queue(tx, &c.email, &notice)?;
            audit::record(
                tx,
                c.actor(),
                "email_changed",
                &email.address,
                &format!("previously {}", c.email),
                &v.ip,
            )?;
            Ok::<_, AccountError>(Ok(email.address.clone()))
        })
        .await??;
    state.mailer.wake();
    Ok(changed)
}

// ---- devices and sessions ----

/// Revokes one of this client's trusted devices; false if no such device is theirs.
pub async fn revoke_device(
    state: &AppState,
    client: &Client,
    device_id: &str,
    visitor: &Visitor,
) -> AppResult<bool> {
    let (c, v, id) = (client.clone(), visitor.clone(), device_id.to_string());
    Ok(state
        .db
        .write(move |tx| {
            let removed = repo::delete_device(tx, c.id, &id)?;
            if removed {
                audit::record(tx, c.actor(), "device_revoked", &c.email, &id, &v.ip)?;
            }
            Ok::<_, DbError>(removed)
        })
        .await?)
}

pub async fn end_other_sessions(
    state: &AppState,
    client: &Client,
    session_token: &str,
    visitor: &Visitor,
) -> AppResult<usize> {
    let (c, v, keep) = (client.clone(), visitor.clone(), token_hash(session_token));
    Ok(state
        .db
        .write(move |tx| {
            let ended = repo::delete_client_sessions(tx, c.id, Some(&keep))?;
            audit::record(
                tx,
                c.actor(),
                "sessions_ended",
                &c.email,
                &format!("{ended} other sessions"),
                &v.ip,
            )?;
            Ok::<_, DbError>(ended)
        })
        .await?)
}
