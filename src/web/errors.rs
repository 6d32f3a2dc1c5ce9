//! One conversion for every capability's error: a user's mistake becomes a
//! message on the page (or a 400), anything else propagates as an `AppError`.

use crate::error::{AppError, AppResult, UserFacing};

/// Splits a service result: user mistakes become a message for the page, anything
/// else propagates as an error.
pub fn user_error<T, E: UserFacing>(result: Result<T, E>) -> AppResult<Result<T, String>> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(e) => e.into_message().map(Err),
    }
}

/// The text to show for a user's mistake; anything else propagates as an error.
pub fn message<E: UserFacing>(e: E) -> AppResult<String> {
    e.into_message()
}

/// A user's mistake where no form can show it: a 400 page with the message.
pub fn bad_request<E: UserFacing>(e: E) -> AppError {
    match e.into_message() {
        Ok(text) => AppError::BadRequest(text),
        Err(e) => e,
    }
}
