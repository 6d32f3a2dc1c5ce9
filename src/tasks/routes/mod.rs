//! The task pages: the client's (`client.rs`) and the staff's (`staff.rs`),
//! and the multipart reading both use for files sent with a form.

pub mod client;
pub mod staff;

use poem::Request;
use poem::web::Multipart;
use tokio::io::AsyncReadExt;

use crate::infra::web::csrf;

/// The text fields of one form may hold at most this much together.
const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Why reading a form stopped.
pub enum Stop {
    /// Without this browser's CSRF token.
    Forbidden,
    Refused(String),
}

/// Reads a multipart form in order: text fields are collected, and a file is
/// handed out only once the CSRF token before it has been checked, so nothing
/// is stored for a forged form.
pub struct FormReader {
    form: Multipart,
    expected: String,
    room: usize,
    pub texts: Vec<(String, String)>,
}

impl FormReader {
    pub fn new(req: &Request, form: Multipart) -> FormReader {
        FormReader {
            form,
            expected: csrf::token(req),
            room: MAX_TEXT_BYTES,
            texts: Vec::new(),
        }
    }

    pub fn text(&self, key: &str) -> &str {
        self.texts
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn csrf_ok(&self) -> bool {
        csrf::matches(&self.expected, self.text("csrf"))
    }

    /// The next file, `Ok(None)` at the end of a genuine form, or the refusal
    /// to show; a forged form is refused outright (403).
    pub async fn next(
        &mut self,
    ) -> crate::error::AppResult<Result<Option<(String, poem::web::Field)>, String>> {
        match self.next_file().await {
            Ok(Some(file)) => Ok(Ok(Some(file))),
            Ok(None) if self.csrf_ok() => Ok(Ok(None)),
            Ok(None) | Err(Stop::Forbidden) => Err(csrf::CsrfRejected.into()),
            Err(Stop::Refused(m)) => Ok(Err(m)),
        }
    }

    /// The next file (its name as sent and its content), reading the text
    /// fields before it; `None` at the end of the form.
    pub async fn next_file(&mut self) -> Result<Option<(String, poem::web::Field)>, Stop> {
        loop {
            let field = match self.form.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(None),
                Err(_) => {
                    return Err(Stop::Refused(
                        "The upload was interrupted. Please try again.".into(),
                    ));
                }
            };
            let name = field.name().unwrap_or("").to_string();
            if let Some(file_name) = field.file_name().map(str::to_string) {
                if file_name.is_empty() {
                    continue; // a file input left empty
                }
                if !self.csrf_ok() {
                    return Err(Stop::Forbidden);
                }
                return Ok(Some((file_name, field)));
            }
            let mut bytes = Vec::new();
            let read = field
                .into_async_read()
                .take(self.room as u64 + 1)
                .read_to_end(&mut bytes)
                .await;
            if read.is_err() || bytes.len() > self.room {
                return Err(Stop::Refused("The form's text is too long.".into()));
            }
            self.room -= bytes.len();
            self.texts
                .push((name, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
}

/// A file field's content as a stream for the document store.
pub fn stream_of(
    field: poem::web::Field,
) -> std::pin::Pin<Box<tokio_util::io::ReaderStream<impl tokio::io::AsyncRead + Send>>> {
    Box::pin(tokio_util::io::ReaderStream::new(field.into_async_read()))
}

/// The values of a form sent as pairs, for one key.
pub fn form_value<'a>(form: &'a [(String, String)], key: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}
