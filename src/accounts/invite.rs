//! S1 invitations: the firm creates a client portal and the client is emailed a
//! link to the portal URL from `portal.toml`.

use minijinja::context;

use super::email::Email;
use super::repo::{self, Client};
use super::{AccountError, AccountResult, clean_name};
use crate::infra::audit::{self, Actor};
use crate::infra::mail;
use crate::state::AppState;

fn invitation(
    state: &AppState,
    name: &str,
    email: &Email,
) -> AccountResult<crate::infra::render::RenderedEmail> {
    let link = format!(
        "{}/signup?email={}",
        state.config.base_url(),
        url::form_urlencoded::byte_serialize(email.address.as_bytes()).collect::<String>()
    );
    Ok(state.email(
        "invitation",
        context! { name, link, email => email.address.clone() },
    )?)
}

/// Creates a client with `email` as its sign-in address and emails the invitation.
pub async fn invite_client(
    state: &AppState,
    name: &str,
    email: &str,
    actor: Actor,
    ip: &str,
) -> AccountResult<Client> {
    let name = clean_name(name, "client name")?;
    let email = Email::parse(email)?;
    let rendered = invitation(state, &name, &email)?;
    let ip = ip.to_string();
    let client = state
        .write_and_mail(move |tx| {
            if repo::email_owner(tx, &email.key)?.is_some() {
                return Err(AccountError::EmailTaken);
            }
            let id = repo::insert_client(tx, &name, &email, true)?;
            mail::queue(tx, &email.address, &rendered)?;
            let client = repo::client_by_id(tx, id)?.ok_or(AccountError::FlowExpired)?;
            audit::record(
                tx,
                actor,
                "client_invited",
                &email.address,
                &client.public_id,
                &ip,
            )?;
            Ok(client)
        })
        .await?;
    Ok(client)
}

/// Sends the invitation again to a client who has not created an account yet.
pub async fn resend_invitation(
    state: &AppState,
    email: &str,
    actor: Actor,
    ip: &str,
) -> AccountResult<Client> {
    let email = Email::parse(email)?;
    let key = email.key.clone();
    let client = state
        .db
        .read(move |conn| Ok::<_, AccountError>(repo::client_by_primary_email(conn, &key)?))
        .await?
        .ok_or_else(|| AccountError::Invalid("No client has that sign-in address.".into()))?;
    if client.signed_up_at.is_some() {
        return Err(AccountError::Invalid(
            "This client has already created an account.".into(),
        ));
    }
    let rendered = invitation(state, &client.name, &email)?;
    let (c, ip) = (client.clone(), ip.to_string());
    state
        .write_and_mail(move |tx| {
            repo::mark_invited(tx, c.id)?;
            mail::queue(tx, &c.email, &rendered)?;
            audit::record(tx, actor, "client_reinvited", &c.email, &c.public_id, &ip)?;
            Ok::<_, AccountError>(())
        })
        .await?;
    Ok(client)
}

pub async fn client_by_public_id(
    state: &AppState,
    public_id: &str,
) -> AccountResult<Option<Client>> {
    let id = public_id.to_string();
    state
        .db
        .read(move |conn| Ok(repo::client_by_public_id(conn, &id)?))
        .await
}

pub async fn list_clients(state: &AppState) -> AccountResult<Vec<Client>> {
    state.db.read(|conn| Ok(repo::list_clients(conn)?)).await
}
