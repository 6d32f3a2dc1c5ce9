//! S1–S6: invitations, sign-up, sign-in with PIN and access code, forgotten PINs,
//! portal requests, sessions, trusted devices and Security Settings.
//!
//! The service functions here take plain values (no HTTP types); `routes` turns
//! requests into calls and results into pages.

pub mod codes;
pub mod email;
pub mod invite;
pub mod pin;
pub mod repo;
pub mod routes;
pub mod session;
pub mod settings;
pub mod signin;
pub mod throttle;

pub use repo::Client;

use crate::error::{AppError, AppResult, UserFacing};
use crate::infra::db::DbError;

/// What can go wrong in these flows. Every variant but `Internal` is the user's to
/// fix, and its text is shown in the page.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("That code is not right. Check the latest email from us and try again.")]
    WrongCode,
    #[error("That code has expired. Ask for a new one.")]
    ExpiredCode,
    #[error("Too many wrong codes. Please start again.")]
    CodeAttemptsExhausted,
    #[error("Please wait {0} seconds before asking for another code.")]
    CodeTooSoon(i64),
    #[error("Too many codes were asked for. Please wait an hour and try again.")]
    CodeLimit,
    #[error("Too many attempts from your network. Please wait a while and try again.")]
    TooManyRequests,
    #[error("The email or PIN is not right.")]
    WrongPin,
    #[error("That PIN is not right.")]
    WrongCurrentPin,
    #[error("Too many wrong attempts. Try again in {}, or use Forgot PIN.", minutes(*.0))]
    Locked(i64),
    #[error("Too many wrong attempts. Use Forgot PIN to set a new PIN.")]
    LockedUntilReset,
    #[error("{0}")]
    Invalid(String),
    #[error("This step has expired. Please start again.")]
    FlowExpired,
    #[error("That email address already belongs to another portal, so it cannot be added here.")]
    EmailTaken,
    #[error(
        "This address is no longer the sign-in address of the portal this step began for, so it cannot finish. Please start again."
    )]
    AddressMoved,
    #[error(transparent)]
    Internal(#[from] AppError),
}

crate::error::internal_from!(AccountError: DbError, rusqlite::Error);

impl From<email::InvalidEmail> for AccountError {
    fn from(e: email::InvalidEmail) -> Self {
        AccountError::Invalid(e.to_string())
    }
}

pub type AccountResult<T> = Result<T, AccountError>;

impl Client {
    /// This client, as the audit log names them.
    pub fn actor(&self) -> crate::infra::audit::Actor {
        crate::infra::audit::Actor::Client(self.public_id.clone())
    }
}

impl UserFacing for AccountError {
    fn into_message(self) -> AppResult<String> {
        match self {
            AccountError::Internal(e) => Err(e),
            e => Ok(e.to_string()),
        }
    }
}

/// "1 minute", "5 minutes".
pub fn minutes(n: i64) -> String {
    if n == 1 {
        "1 minute".into()
    } else {
        format!("{n} minutes")
    }
}

/// A name typed by a person: without control or format characters (which could
/// make it display as another name), trimmed, at most 100 characters.
pub fn clean_name(input: &str, field: &str) -> AccountResult<String> {
    let visible = crate::infra::text::strip_invisible(input);
    let name = visible.trim();
    if name.is_empty() {
        return Err(AccountError::Invalid(format!("Enter your {field}.")));
    }
    if name.chars().count() > 100 {
        return Err(AccountError::Invalid(format!(
            "The {field} must be at most 100 characters of text."
        )));
    }
    Ok(name.to_string())
}
