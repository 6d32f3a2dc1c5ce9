//! One log line per request, inside a span that carries the request's id. The id
//! also goes back in `X-Request-Id` and on 5xx pages ("quote this to your firm"),
//! so a firm can find the log lines of the request a client reports.

use std::time::Instant;

use poem::http::HeaderValue;
use std::sync::Arc;

use poem::{Endpoint, IntoResponse, Request, Response, Result};
use tracing::Instrument;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, if called while handling one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Logs the request in a span with its id and sends the id back (an `around` layer).
pub async fn request_log<E: Endpoint>(next: Arc<E>, req: Request) -> Result<Response> {
    let id = new_request_id();
    let started = Instant::now();
    // Paths only: query strings may hold emails or tokens.
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %req.method(),
        path = %req.uri().path().escape_debug(),
    );
    let inner = async {
        let mut resp = match next.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        tracing::info!(
            status = resp.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "request"
        );
        if let Ok(value) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert("x-request-id", value);
        }
        resp
    };
    Ok(REQUEST_ID.scope(id.clone(), inner.instrument(span)).await)
}

/// 12 random characters a person can read out over the phone.
fn new_request_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..12)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}
