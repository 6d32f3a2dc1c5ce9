//! CSRF protection, in layers:
//!
//! - [`csrf_guard`] refuses any unsafe request (POST, PUT, PATCH, DELETE...)
//!   that a browser says comes from another site: an `Origin` that is not the
//!   portal's own, or `Sec-Fetch-Site: cross-site` or `same-site` (a sibling
//!   subdomain). It also gives every browser a random HttpOnly `portal_browser`
//!   cookie.
//! - Forms carry `csrf = HMAC(key, browser id, session cookies)` in a hidden field
//!   (scripts send it as `X-CSRF-Token`), and [`CsrfForm`] refuses a request whose
//!   token does not match. Binding the token to the session means a token seen
//!   before sign-in, or in another session, is worthless once signed in; and the
//!   browser id itself is replaced at sign-in and sign-out ([`rotate_browser_id`]).

use std::sync::Arc;

use poem::http::{Method, StatusCode};
use poem::{Endpoint, FromRequest, IntoResponse, Request, RequestBody, Response, Result};
use serde::de::DeserializeOwned;

use super::WebSettings;
use super::page::cookie;
use crate::infra::crypto::{SecretKey, constant_time_eq, random_token};

/// The CSRF token for this request's browser and session(s), for templates. It
/// reads the cookie jar, so it reflects cookies set earlier in the same request.
pub fn token(req: &Request) -> String {
    let (Some(key), Some(settings)) = (req.data::<SecretKey>(), req.data::<WebSettings>()) else {
        return String::new();
    };
    let names = &settings.cookies;
    let Some(browser) = cookie(req, &names.browser) else {
        return String::new();
    };
    let session = cookie(req, &names.session).unwrap_or_default();
    let staff = cookie(req, &names.staff_session).unwrap_or_default();
    key.mac_b64(&[
        b"csrf",
        browser.as_bytes(),
        session.as_bytes(),
        staff.as_bytes(),
    ])
}

/// Gives this browser a new id, so that every CSRF token it held stops working.
/// Called when a session starts or ends.
pub fn rotate_browser_id(req: &Request) {
    if let Some(settings) = req.data::<WebSettings>() {
        set_browser_id(req, settings);
    }
}

fn set_browser_id(req: &Request, settings: &WebSettings) {
    let cookies = &settings.cookies;
    let id = random_token();
    req.cookie()
        .add(cookies.make(&cookies.browser, &id, Some(400 * 24 * 3600)));
}

/// Refuses cross-site unsafe requests and ensures every browser has an id.
pub async fn csrf_guard<E: Endpoint>(next: Arc<E>, req: Request) -> Result<Response> {
    if let Some(settings) = req.data::<WebSettings>() {
        if let Some(reason) = cross_site(&req, settings) {
            tracing::warn!(path = %req.uri().path().escape_debug(), reason, "request refused");
            return Err(CsrfRejected.into());
        }
        let has_id = req
            .cookie()
            .get(&settings.cookies.browser)
            .is_some_and(|c| c.value_str().len() >= 32);
        if !has_id {
            set_browser_id(&req, settings);
        }
    }
    Ok(next.call(req).await?.into_response())
}

/// Why an unsafe request is refused as coming from another site, if it is. A
/// request without `Origin` or `Sec-Fetch-Site` (not a browser, or an old one)
/// passes here and still needs its token.
fn cross_site(req: &Request, settings: &WebSettings) -> Option<&'static str> {
    if matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) {
        return None;
    }
    let header = |name: &str| req.headers().get(name).map(|v| v.to_str().unwrap_or(""));
    // `same-site` is a sibling host (another subdomain of the same site), which
    // can be an attacker's page too: the portal's own pages are `same-origin`.
    if header("sec-fetch-site").is_some_and(|v| {
        v.eq_ignore_ascii_case("cross-site") || v.eq_ignore_ascii_case("same-site")
    }) {
        return Some("Sec-Fetch-Site is another site");
    }
    match header("origin") {
        Some(origin) if !own_origin(req, settings, origin) => Some("Origin is another site"),
        _ => None,
    }
}

/// Whether `origin` is the portal's: that of `server.public_url`, or the host the
/// request was sent to (with the scheme the portal is served over).
fn own_origin(req: &Request, settings: &WebSettings, origin: &str) -> bool {
    let Some(origin) = origin_of(origin) else {
        // "null" (a sandboxed frame, a cross-site redirect) or junk.
        return false;
    };
    if origin == settings.public_origin {
        return true;
    }
    let scheme = if settings.https { "https" } else { "http" };
    let host = req
        .headers()
        .get(poem::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    host.and_then(|h| origin_of(&format!("{scheme}://{h}")))
        .is_some_and(|own| own == origin)
}

/// `scheme://host[:port]` of a URL (default ports dropped), if it has one.
pub fn origin_of(url: &str) -> Option<String> {
    let origin = url::Url::parse(url).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
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
        if !matches(&token(req), sent) {
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
    if !matches(&token(req), sent) {
        tracing::warn!(path = %req.uri().path(), "request refused: missing or wrong CSRF header");
        return Err(CsrfRejected);
    }
    Ok(())
}

/// Whether `sent` is the `expected` token (from [`token`]), compared in constant
/// time; an empty expected token (no browser id) matches nothing.
pub fn matches(expected: &str, sent: &str) -> bool {
    !expected.is_empty() && constant_time_eq(sent.as_bytes(), expected.as_bytes())
}
