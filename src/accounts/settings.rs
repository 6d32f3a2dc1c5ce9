//! S5 Security Settings: merge emails, update PIN, update email, devices and sessions.

use minijinja::context;

use super::codes::{self, NewFlow, Purpose, Requester, Started};
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

/// Starts a flow of `purpose` for this client and sends its code to `address`.
/// A `secret` (the new PIN's hash) waits in the flow until the code confirms it.
async fn start_flow(
    state: &AppState,
    client: &Client,
    purpose: Purpose,
    address: &str,
    secret: Option<String>,
    visitor: &Visitor,
) -> AccountResult<Started> {
    let new = NewFlow {
        client_id: Some(client.id),
        ..purpose.flow("code", address)
    };
    let started = codes::start(state, new).await?;
    if let Some(secret) = secret {
        codes::set_pending_secret(state, &started.flow, secret).await?;
    }
    codes::send_code(state, &started.flow, visitor, Requester::Account(client.id)).await?;
    Ok(started)
}

/// "Send a new code" on the code page of a change.
pub async fn resend(
    state: &AppState,
    client: &Client,
    token: Option<&str>,
    purpose: Purpose,
    visitor: &Visitor,
) -> AccountResult<repo::Flow> {
    let flow = own_flow(state, client, token, purpose).await?;
    codes::send_code(state, &flow, visitor, Requester::Account(client.id)).await?;
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
    start_flow(state, client, Purpose::Merge, &email.address, None, visitor).await
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
    let attempt = throttle::SecretAttempt {
        key: throttle::key("pin", &Email::key_of(&client.email)),
        typed: current.trim(),
        address: &client.email,
        visitor,
        failed: (failure_event, "wrong current PIN"),
    };
    let stored = client.pin_hash.clone();
    let actor = |_: &()| client.actor();
    let (_, ok) =
        throttle::check_secret(state, attempt, |_| Ok(()), |_| stored, actor, |_| Ok(())).await?;
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
    let secret = Some(pin_hash);
    start_flow(
        state,
        client,
        Purpose::PinChange,
        &email.address,
        secret,
        visitor,
    )
    .await
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
    if Email::key_of(&flow.email) != Email::key_of(&client.email) {
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
        .write_and_mail(move |tx| {
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
    if email.key == Email::key_of(&client.email) {
        return Err(AccountError::Invalid(
            "That is already your sign-in address.".into(),
        ));
    }
    confirm_current_pin(state, client, current_pin, "email_change_failed", visitor).await?;
    start_flow(
        state,
        client,
        Purpose::EmailChange,
        &email.address,
        None,
        visitor,
    )
    .await
}

/// "Verify Code" of Merge Emails or Update Email ID (`purpose`): the address
/// joins this portal as a merged address, or becomes its sign-in address and the
/// old address is told where sign-in moved. Returns the address.
pub async fn address_finish(
    state: &AppState,
    client: &Client,
    token: Option<&str>,
    purpose: Purpose,
    code: &str,
    visitor: &Visitor,
) -> AccountResult<String> {
    let flow = own_flow(state, client, token, purpose).await?;
    codes::verify_code(state, &flow, code, "done").await?;
    let email = codes::flow_email(&flow)?;
    let merge = purpose == Purpose::Merge;
    let (notice, event, detail) = if merge {
        let ctx = context! { added => email.address.clone() };
        (
            state.email("email_added", ctx)?,
            "email_merged",
            String::new(),
        )
    } else {
        let ctx = context! { old => client.email.clone(), new_masked => email.masked() };
        let detail = format!("previously {}", client.email);
        (state.email("email_changed", ctx)?, "email_changed", detail)
    };
    let (c, v) = (client.clone(), visitor.clone());
    let changed = state
        .db
        .write(move |tx| {
            repo::delete_flow(tx, &flow.token_hash)?;
            // Merging takes no address that has an owner, even this client; a merged
            // address of this portal may become its sign-in address.
            let owner = repo::email_owner(tx, &email.key)?;
            if owner.is_some_and(|(owner, _)| merge || owner != c.id) {
                return Ok(Err(AccountError::EmailTaken));
            }
            if merge {
                repo::add_merged_email(tx, c.id, &email)?;
            } else {
                repo::replace_primary_email(tx, c.id, &email)?;
            }
            mail::queue(tx, &c.email, &notice)?;
            audit::record(tx, c.actor(), event, &email.address, &detail, &v.ip)?;
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
