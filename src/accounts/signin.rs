//! S2 sign-up, S3 sign-in and S3a forgotten PIN, as step-by-step services.

use minijinja::context;

use super::codes::{self, NewFlow, Purpose, Requester, Started};
use super::email::Email;
use super::repo::{self, Client, Flow};
use super::session::{self, Subject};
use super::{AccountError, AccountResult, clean_name, pin, throttle};
use crate::config::Signup;
use crate::ids::ClientId;
use crate::infra::audit::{self, Actor};
use crate::infra::mail;
use crate::infra::web::Visitor;
use crate::state::AppState;

/// What a sign-up for an address may do. Never shown to the visitor.
enum Eligibility {
    /// Invited by the firm and not yet signed up.
    Invited(ClientId),
    /// Unknown address, and the firm allows open sign-up.
    New,
    /// Already a portal's address: told so by email, no code.
    HasAccount,
    /// Unknown address and sign-up is by invitation only: nothing is sent.
    NotAllowed,
}

fn eligibility(
    conn: &rusqlite::Connection,
    state: &AppState,
    email: &Email,
) -> rusqlite::Result<Eligibility> {
    Ok(match repo::email_owner(conn, &email.key)? {
        Some((client_id, true)) => match repo::client_by_id(conn, client_id)? {
            Some(c) if c.pin_hash.is_none() => Eligibility::Invited(client_id),
            _ => Eligibility::HasAccount,
        },
        Some((_, false)) => Eligibility::HasAccount,
        None if state.config.accounts.signup == Signup::Open => Eligibility::New,
        None => Eligibility::NotAllowed,
    })
}

/// The flow of `purpose` behind the browser's token, provided it is at `stage`.
async fn load_at(
    state: &AppState,
    token: Option<&str>,
    purpose: Purpose,
    stage: &str,
) -> AccountResult<Flow> {
    let flow = codes::load(state, token, purpose).await?;
    if flow.stage != stage {
        return Err(AccountError::FlowExpired);
    }
    Ok(flow)
}

/// The code of a sign-up or Forgot PIN flow confirmed: the new PIN comes next.
pub async fn verify_before_pin(
    state: &AppState,
    token: Option<&str>,
    purpose: Purpose,
    code: &str,
) -> AccountResult<()> {
    let flow = load_at(state, token, purpose, "code").await?;
    codes::verify_code(state, &flow, code, "pin").await
}

/// The new PIN of a sign-up or Forgot PIN flow, checked against its confirmation.
struct NewPin {
    flow: Flow,
    pin_hash: String,
    email: Email,
}

/// "Create Account" or "Save PIN", the last step of a sign-up or Forgot PIN flow
/// (`purpose`). Returns the address, to prefill sign-in.
pub async fn pin_finish(
    state: &AppState,
    token: Option<&str>,
    purpose: Purpose,
    new_pin: &str,
    confirm: &str,
    visitor: &Visitor,
) -> AccountResult<String> {
    let flow = load_at(state, token, purpose, "pin").await?;
    let pin = pin::check_new(new_pin, confirm)?;
    let pin_hash = state.hash_secret(pin).await?;
    let email = codes::flow_email(&flow)?;
    let new = NewPin {
        flow,
        pin_hash,
        email,
    };
    match purpose {
        Purpose::Signup => create_account(state, new, visitor).await,
        Purpose::Reset => reset_pin(state, new, visitor).await,
        _ => Err(AccountError::FlowExpired),
    }
}

// ---- S2 sign-up ----

/// Name and email entered, "Verify your email" pressed. Every address gets the
/// same answer; only an invited (or, with open sign-up, a new) one gets a code.
pub async fn signup_start(
    state: &AppState,
    name: &str,
    email: &str,
    visitor: &Visitor,
) -> AccountResult<Started> {
    let name = clean_name(name, "name")?;
    let email = Email::parse(email)?;
    codes::allow_new_flow(state, visitor)?;
    let lookup = email.clone();
    let st = state.clone();
    let found = state
        .db
        .read(move |conn| eligibility(conn, &st, &lookup).map_err(AccountError::from))
        .await?;
    let client_id = match found {
        Eligibility::Invited(id) => Some(id),
        _ => None,
    };
    let new = NewFlow {
        name: Some(name),
        client_id,
        ..Purpose::Signup.flow("code", &email.address)
    };
    let started = codes::start(state, new).await?;
    let deliver = matches!(found, Eligibility::Invited(_) | Eligibility::New);
    codes::send_code(
        state,
        &started.flow,
        visitor,
        Requester::Anonymous { deliver },
    )
    .await?;
    if matches!(found, Eligibility::HasAccount) && codes::allow_notice(state, &email.key) {
        let notice = state.email("signup_exists", context! { email => email.address.clone() })?;
        let to = email.address.clone();
        state
            .write_and_mail(move |tx| mail::queue(tx, &to, &notice).map_err(AccountError::from))
            .await?;
    }
    Ok(started)
}

/// Sign-up's new PIN: the account is created (or the invited one completed).
async fn create_account(state: &AppState, new: NewPin, visitor: &Visitor) -> AccountResult<String> {
    let name = new.flow.name.clone().unwrap_or_default();
    let st = state.clone();
    let visitor = visitor.clone();
    state
        .db
        .write(move |tx| {
            let client_id = match eligibility(tx, &st, &new.email)? {
                // An invitation of another portal than the one the flow began for.
                Eligibility::Invited(id) if new.flow.client_id.is_some_and(|f| f != id) => {
                    return Err(AccountError::AddressMoved);
                }
                Eligibility::Invited(id) => id,
                Eligibility::New => repo::insert_client(tx, &name, &new.email, false)?,
                Eligibility::HasAccount => {
                    return Err(AccountError::Invalid(
                        "An account already exists for this email. Please sign in.".into(),
                    ));
                }
                Eligibility::NotAllowed => return Err(AccountError::FlowExpired),
            };
            if !repo::create_account(tx, client_id, &name, &new.pin_hash)? {
                return Err(AccountError::Invalid(
                    "An account already exists for this email. Please sign in.".into(),
                ));
            }
            let client = repo::client_by_id(tx, client_id)?.ok_or(AccountError::FlowExpired)?;
            audit::record(
                tx,
                Actor::Client(client.public_id),
                "signup",
                &new.email.address,
                "",
                &visitor.ip,
            )?;
            repo::delete_flow(tx, &new.flow.token_hash)?;
            Ok(new.email.address.clone())
        })
        .await
}

// ---- S3 sign-in ----

pub enum NextStep {
    Pin,
    Code,
}

/// Email entered, "Continue" pressed. A trusted device of that account goes
/// straight to the access code; everyone else is asked for a PIN.
pub async fn signin_start(
    state: &AppState,
    email: &str,
    next: &str,
    device: Option<&str>,
    visitor: &Visitor,
) -> AccountResult<(Started, NextStep)> {
    let email = Email::parse(email)?;
    codes::allow_new_flow(state, visitor)?;
    let key = email.key.clone();
    let device = device.map(str::to_string);
    let (client, trusted) = state
        .db
        .read(move |conn| {
            let client =
                repo::client_by_primary_email(conn, &key)?.filter(|c| c.pin_hash.is_some());
            let trusted = match &client {
                Some(c) => session::is_trusted(conn, c.id, device.as_deref())?,
                None => false,
            };
            Ok::<_, AccountError>((client, trusted))
        })
        .await?;
    let stage = if trusted { "code" } else { "pin" };
    let client_id = client.map(|c| c.id);
    let new = NewFlow {
        client_id,
        next_path: Some(next.to_string()),
        ..Purpose::Signin.flow(stage, &email.address)
    };
    let started = codes::start(state, new).await?;
    if let (true, Some(id)) = (trusted, client_id) {
        codes::send_code(state, &started.flow, visitor, Requester::Account(id)).await?;
        Ok((started, NextStep::Code))
    } else {
        Ok((started, NextStep::Pin))
    }
}

/// The flow behind the browser's cookie, for showing its pages.
pub async fn current_flow(
    state: &AppState,
    token: Option<&str>,
    purpose: Purpose,
) -> AccountResult<Flow> {
    codes::load(state, token, purpose).await
}

/// PIN entered on a browser that is not trusted. Wrong PINs count against the
/// address (known or not) and lock it out for a while.
pub async fn signin_pin(
    state: &AppState,
    token: Option<&str>,
    typed_pin: &str,
    visitor: &Visitor,
) -> AccountResult<Flow> {
    let flow = load_at(state, token, Purpose::Signin, "pin").await?;
    let typed_pin = typed_pin.trim();
    if typed_pin.len() != 6 || !typed_pin.bytes().all(|b| b.is_ascii_digit()) {
        // Said the same for every address, and not counted as a guess.
        return Err(AccountError::Invalid(
            "Your PIN is the 6 digits you chose when you created your account.".into(),
        ));
    }
    let email = codes::flow_email(&flow)?;
    let attempt = throttle::SecretAttempt {
        key: throttle::key("pin", &email.key),
        typed: typed_pin,
        address: &email.address,
        visitor,
        failed: ("signin_failed", "wrong PIN"),
    };
    let (email_key, flow_client, hash) =
        (email.key.clone(), flow.client_id, flow.token_hash.clone());
    // Only the account the flow began for: if the address has moved to another
    // portal since, this is a wrong PIN like any other.
    let holder = move |tx: &rusqlite::Connection| {
        Ok(repo::client_by_primary_email(tx, &email_key)?.filter(|c| Some(c.id) == flow_client))
    };
    let (client, ok) = throttle::check_secret(
        state,
        attempt,
        holder,
        |client: &Option<Client>| client.as_ref().and_then(|c| c.pin_hash.clone()),
        |client| client.as_ref().map_or(Actor::Visitor, |c| c.actor()),
        move |tx| Ok(repo::advance_flow(tx, &hash, "code")?),
    )
    .await?;
    let Some(client) = client.filter(|_| ok) else {
        return Err(AccountError::WrongPin);
    };
    codes::send_code(state, &flow, visitor, Requester::Account(client.id)).await?;
    Ok(flow)
}

/// What a finished sign-in hands the browser.
pub struct SignedIn {
    pub session_token: String,
    pub device_token: String,
    pub client: Client,
    /// The local page to go to now.
    pub next: String,
}

/// The access code confirmed: the session starts and this browser becomes trusted.
pub async fn signin_code(
    state: &AppState,
    token: Option<&str>,
    code: &str,
    device: Option<&str>,
    visitor: &Visitor,
) -> AccountResult<SignedIn> {
    let flow = load_at(state, token, Purpose::Signin, "code").await?;
    if let Err(e) = codes::verify_code(state, &flow, code, "done").await {
        let (address, v) = (flow.email.clone(), visitor.clone());
        state
            .db
            .write(move |tx| {
                audit::record(
                    tx,
                    Actor::Visitor,
                    "signin_failed",
                    &address,
                    "wrong access code",
                    &v.ip,
                )
                .map_err(AccountError::from)
            })
            .await?;
        return Err(e);
    }
    let email = codes::flow_email(&flow)?;
    let st = state.clone();
    let (device, v) = (device.map(str::to_string), visitor.clone());
    state
        .db
        .write(move |tx| {
            let client = flow_client(tx, &flow, &email)?;
            let session_token = session::open(tx, &st, Subject::Client(client.id), &v)?;
            let device_token = session::trust_device(tx, &st, client.id, device.as_deref(), &v)?;
            repo::delete_flow(tx, &flow.token_hash)?;
            audit::record(tx, client.actor(), "signin", &email.address, "", &v.ip)?;
            let next = crate::infra::web::local_path(flow.next_path.as_deref());
            Ok(SignedIn {
                session_token,
                device_token,
                client,
                next,
            })
        })
        .await
}

// ---- S3a forgotten PIN ----

/// "Forgot PIN?" on the PIN step: a code goes to the address (if it has an account).
pub async fn reset_start(
    state: &AppState,
    signin_token: Option<&str>,
    device: Option<&str>,
    visitor: &Visitor,
) -> AccountResult<Started> {
    let signin = codes::load(state, signin_token, Purpose::Signin).await?;
    // Each press starts a flow, even when the code is then refused.
    codes::allow_new_flow(state, visitor)?;
    let email = codes::flow_email(&signin)?;
    let key = email.key.clone();
    let client = state
        .db
        .read(move |conn| {
            Ok::<_, AccountError>(
                repo::client_by_primary_email(conn, &key)?.filter(|c| c.pin_hash.is_some()),
            )
        })
        .await?;
    let requester = reset_requester(state, client.as_ref().map(|c| c.id), device).await?;
    let new = NewFlow {
        client_id: client.as_ref().map(|c| c.id),
        ..Purpose::Reset.flow("code", &email.address)
    };
    let started = codes::start(state, new).await?;
    codes::send_code(state, &started.flow, visitor, requester).await?;
    Ok(started)
}

/// "Send a new code" on the code page of a sign-up, sign-in or Forgot PIN flow,
/// charged to whoever the flow's stage shows the visitor to be.
pub async fn resend_code(
    state: &AppState,
    token: Option<&str>,
    purpose: Purpose,
    device: Option<&str>,
    visitor: &Visitor,
) -> AccountResult<Flow> {
    let flow = load_at(state, token, purpose, "code").await?;
    let requester = match purpose {
        Purpose::Signup => {
            let (email, st) = (codes::flow_email(&flow)?, state.clone());
            let found = state
                .db
                .read(move |conn| eligibility(conn, &st, &email).map_err(AccountError::from))
                .await?;
            let deliver = matches!(found, Eligibility::Invited(_) | Eligibility::New);
            Requester::Anonymous { deliver }
        }
        Purpose::Reset => reset_requester(state, flow.client_id, device).await?,
        // The code stage is reached only with the right PIN or a trusted device.
        Purpose::Signin => Requester::Account(flow.client_id.ok_or(AccountError::FlowExpired)?),
        // The other flows belong to a signed-in client (`settings::resend`).
        _ => return Err(AccountError::FlowExpired),
    };
    codes::send_code(state, &flow, visitor, requester).await?;
    Ok(flow)
}

/// Forgot PIN proves nothing, unless it is asked for on a trusted device of the
/// account: then it spends the account's own budget, which strangers cannot.
async fn reset_requester(
    state: &AppState,
    client_id: Option<ClientId>,
    device: Option<&str>,
) -> AccountResult<Requester> {
    let Some(id) = client_id else {
        return Ok(Requester::Anonymous { deliver: false });
    };
    let device = device.map(str::to_string);
    let trusted = state
        .db
        .read(move |conn| {
            session::is_trusted(conn, id, device.as_deref()).map_err(AccountError::from)
        })
        .await?;
    Ok(if trusted {
        Requester::Account(id)
    } else {
        Requester::Anonymous { deliver: true }
    })
}

/// The account a sign-in or Forgot PIN flow began for, provided `email` is still
/// its sign-in address: it may have been changed, or moved to another portal,
/// since the flow began, and the flow must not finish on whoever holds it now.
fn flow_client(conn: &rusqlite::Connection, flow: &Flow, email: &Email) -> AccountResult<Client> {
    let id = flow.client_id.ok_or(AccountError::FlowExpired)?;
    match repo::client_by_primary_email(conn, &email.key)? {
        Some(c) if c.id == id && c.pin_hash.is_some() => Ok(c),
        _ => Err(AccountError::AddressMoved),
    }
}

/// Forgot PIN's new PIN is set; every session and trusted device of the account
/// ends, the lockout is lifted and the address is told.
async fn reset_pin(state: &AppState, new: NewPin, visitor: &Visitor) -> AccountResult<String> {
    let (flow, email) = (new.flow, new.email);
    let notice = state.email(
        "pin_changed",
        context! { email => email.address.clone(), reset => true },
    )?;
    let v = visitor.clone();
    let address = state
        .write_and_mail(move |tx| {
            let client = flow_client(tx, &flow, &email)?;
            repo::set_pin(tx, client.id, &new.pin_hash)?;
            repo::delete_client_sessions(tx, client.id, None)?;
            repo::delete_client_devices(tx, client.id)?;
            throttle::clear(tx, &throttle::key("pin", &email.key))?;
            repo::delete_flow(tx, &flow.token_hash)?;
            mail::queue(tx, &email.address, &notice)?;
            audit::record(
                tx,
                Actor::Client(client.public_id),
                "pin_reset",
                &email.address,
                "sessions and trusted devices ended",
                &v.ip,
            )?;
            Ok::<_, AccountError>(email.address.clone())
        })
        .await?;
    Ok(address)
}
