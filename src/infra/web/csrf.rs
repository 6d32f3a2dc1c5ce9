//! CSRF protection. Every browser gets a random HttpOnly `portal_browser` cookie;
//! forms carry `csrf = HMAC(key, browser id)` in a hidden field, and [`CsrfForm`]
//! refuses any state-changing request whose token does not match.

use poem::http::StatusCode;
use poem::{
    Endpoint, FromRequest, IntoResponse, Middleware, Request, RequestBody, Response, Result,
};
use serde::de::DeserializeOwned;

use super::WebSettings;
use crate::infra::crypto::{SecretKey, constant_time_eq, random_token};

/// The browser's id, as read from (or just given in) its cookie.
#[derive(Clone)]
pub struct BrowserId(pub String);

/// The CSRF token for this request's browser, for templates.
pub fn token(req: &Request) -> String {
    match (req.data::<SecretKey>(), req.extensions().get::<BrowserId>()) {
        (Some(key), Some(id)) => key.mac_b64(&[b"csrf", id.0.as_bytes()]),
        _ => String::new(),
    }
}

/// Ensures every request has a [`BrowserId`], setting the cookie on first visit.
pub struct BrowserIdMiddleware;

impl<E: Endpoint> Middleware<E> for BrowserIdMiddleware {
    type Output = BrowserIdEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        BrowserIdEndpoint(ep)
    }
}

pub struct BrowserIdEndpoint<E>(E);

impl<E: Endpoint> Endpoint for BrowserIdEndpoint<E> {
    type Output = Response;
    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let Some(settings) = req.data::<WebSettings>().cloned() else {
            return Ok(self.0.call(req).await?.into_response());
        };
        let name = &settings.cookies.browser;
        let existing = req
            .cookie()
            .get(name)
            .map(|c| c.value_str().to_string())
            .filter(|v| v.len() >= 32);
        let id = match existing {
            Some(id) => id,
            None => {
                let id = random_token();
                req.cookie()
                    .add(settings.cookies.make(name, &id, Some(400 * 24 * 3600)));
                id
            }
        };
        req.extensions_mut().insert(BrowserId(id));
        Ok(self.0.call(req).await?.into_response())
    }
}

/// A URL-encoded form whose `csrf` field has been checked.
pub struct CsrfForm<T>(pub T);

#[derive(Debug, thiserror::Error)]
#[error("This form has expired or did not come from this portal. Reload the page and try again.")]
pub struct CsrfRejected;

impl poem::error::ResponseError for CsrfRejected {
    fn status(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }
}

#[derive(Debug, thiserror::Error)]
#[error("The form could not be read. Reload the page and try again.")]
pub struct BadForm;

impl poem::error::ResponseError for BadForm {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

const MAX_FORM_BYTES: usize = 64 * 1024;

impl<'a, T: DeserializeOwned> FromRequest<'a> for CsrfForm<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> Result<Self> {
        let bytes = body
            .take()?
            .into_bytes_limit(MAX_FORM_BYTES)
            .await
            .map_err(|_| BadForm)?;
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&bytes).map_err(|_| BadForm)?;
        let sent = pairs
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        let expected = token(req);
        if expected.is_empty() || !constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
            tracing::warn!(path = %req.uri().path(), "request refused: missing or wrong CSRF token");
            return Err(CsrfRejected.into());
        }
        let value = serde_urlencoded::from_bytes(&bytes).map_err(|_| BadForm)?;
        Ok(CsrfForm(value))
    }
}

/// Checks the `X-CSRF-Token` header of a script's state-changing request.
pub fn check_header(req: &Request) -> Result<(), CsrfRejected> {
    let sent = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let expected = token(req);
    if expected.is_empty() || !constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
        tracing::warn!(path = %req.uri().path(), "request refused: missing or wrong CSRF header");
        return Err(CsrfRejected);
    }
    Ok(())
}

/// Whether `sent` is this browser's CSRF token (for multipart forms read by hand).
pub fn token_matches(req: &Request, sent: &str) -> bool {
    let expected = token(req);
    !expected.is_empty() && constant_time_eq(sent.as_bytes(), expected.as_bytes())
}
