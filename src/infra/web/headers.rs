//! Security headers on every response.

use poem::http::HeaderValue;
use std::sync::Arc;

use poem::{Endpoint, IntoResponse, Request, Response, Result};

use super::WebSettings;

/// Strict policy: no inline script or style, nothing from other origins.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Sets the security headers a response does not set itself (an `around` layer).
pub async fn security_headers<E: Endpoint>(next: Arc<E>, req: Request) -> Result<Response> {
    let https = req.data::<WebSettings>().map(|s| s.https).unwrap_or(false);
    let mut resp = match next.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    let h = resp.headers_mut();
    let set = |h: &mut poem::http::HeaderMap, name: &'static str, value: &'static str| {
        if !h.contains_key(name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    set(h, "content-security-policy", CSP);
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "same-origin");
    set(
        h,
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cache-control", "no-store");
    if https {
        set(
            h,
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        );
    }
    Ok(resp)
}
