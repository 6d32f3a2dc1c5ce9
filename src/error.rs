//! The one error type handlers return. 4xx errors carry a message for the user;
//! 5xx errors show a generic page while the cause goes to the log.

use poem::http::StatusCode;

use crate::infra::db::DbError;
use crate::infra::web::csrf::{BadForm, CsrfRejected};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("We could not find that page.")]
    NotFound,
    /// Not signed in (or the session ended): go to the sign-in page, then back.
    #[error("Please sign in.")]
    SignInRequired { next: String, staff: bool },
    #[error("{0}")]
    BadRequest(String),
    /// A state change without this browser's CSRF token.
    #[error("{0}")]
    Forbidden(String),
    #[error("Too many attempts. {0}")]
    TooMany(String),
    #[error("Something went wrong on our side. Please try again in a moment.")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(e.into())
    }
}

/// The one row `find` looks up on a read connection, or 404 when there is none
/// (a missing id and another client's id look the same).
pub async fn read_or_404<T, F>(db: &crate::infra::db::Db, find: F) -> AppResult<T>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Connection) -> rusqlite::Result<Option<T>> + Send + 'static,
{
    db.read(move |conn| find(conn).map_err(DbError::from))
        .await?
        .ok_or(AppError::NotFound)
}

impl From<crate::infra::web::csrf::CsrfRejected> for AppError {
    fn from(e: crate::infra::web::csrf::CsrfRejected) -> Self {
        AppError::Forbidden(e.to_string())
    }
}

/// `impl From<Source> for Error` for each source, as `Error::Internal(e.into())`:
/// the database errors every error type of the program carries as internal.
macro_rules! internal_from {
    ($error:ident: $($source:ty),+) => {
        $(impl From<$source> for $error {
            fn from(e: $source) -> Self {
                $error::Internal(e.into())
            }
        })+
    };
}
pub(crate) use internal_from;

internal_from!(AppError: DbError, rusqlite::Error);

impl From<minijinja::Error> for AppError {
    fn from(e: minijinja::Error) -> Self {
        AppError::Internal(anyhow::anyhow!("template: {e:#}"))
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> Self {
        AppError::Internal(e.into())
    }
}

impl poem::error::ResponseError for AppError {
    fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::SignInRequired { .. } => StatusCode::SEE_OTHER,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// A capability's error: either a user's mistake, whose text is shown on the page,
/// or an internal failure.
pub trait UserFacing {
    /// `Ok` with the text for a user's mistake, `Err` for anything else.
    fn into_message(self) -> AppResult<String>;
}

/// Turns any error that reached the top into a themed page (or a redirect to sign in).
pub fn error_page(state: &crate::state::AppState, err: poem::Error) -> poem::Response {
    use poem::IntoResponse;
    use poem::web::{Html, Redirect};

    let status = err.status();
    let message = match err.downcast_ref::<AppError>() {
        Some(AppError::SignInRequired { next, staff }) => {
            let base = if *staff { "/staff/signin" } else { "/signin" };
            let target = if next == "/" || next.is_empty() {
                base.to_string()
            } else {
                format!(
                    "{base}?next={}",
                    url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                )
            };
            return Redirect::see_other(target).into_response();
        }
        Some(e @ AppError::Internal(cause)) => {
            tracing::error!(
                error = format!("{cause:#}").escape_debug().to_string(),
                "request failed"
            );
            e.to_string()
        }
        Some(e) => e.to_string(),
        // Our own messages, written for the user.
        None if err.is::<CsrfRejected>() || err.is::<BadForm>() => err.to_string(),
        None if status.is_server_error() => {
            tracing::error!(error = %err.to_string().escape_debug(), "request failed");
            "Something went wrong on our side. Please try again in a moment.".to_string()
        }
        None if status == poem::http::StatusCode::NOT_FOUND => {
            "We could not find that page.".to_string()
        }
        None if status == poem::http::StatusCode::METHOD_NOT_ALLOWED => {
            "That page cannot be used this way.".to_string()
        }
        None if status == poem::http::StatusCode::PAYLOAD_TOO_LARGE => {
            "What you sent is too large.".to_string()
        }
        // Any other client error comes from a parser (a form, multipart body, query
        // or path that could not be read); its text is for developers, not users.
        None => {
            tracing::info!(status = status.as_u16(), error = %err.to_string().escape_debug(), "request refused");
            BadForm.to_string()
        }
    };
    let title = match status.as_u16() {
        404 => "Page not found",
        403 => "Not allowed",
        429 => "Too many attempts",
        s if s >= 500 => "Something went wrong",
        _ => "Something is not right",
    };
    let body = state
        .renderer
        .render(
            "error.html",
            minijinja::context! {
                title,
                message,
                status => status.as_u16(),
                request_id => status
                    .is_server_error()
                    .then(crate::infra::web::request_log::current_request_id)
                    .flatten(),
            },
        )
        .unwrap_or_else(|_| format!("<!doctype html><title>{title}</title><p>{title}</p>"));
    (status, Html(body)).into_response()
}
