//! Security headers on every response.

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

use super::WebSettings;

/// Strict policy: no inline script or style, nothing from other origins.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

pub struct SecurityHeaders;

impl<E: Endpoint> Middleware<E> for SecurityHeaders {
    type Output = SecurityHeadersEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        SecurityHeadersEndpoint(ep)
    }
}

pub struct SecurityHeadersEndpoint<E>(E);

impl<E: Endpoint> Endpoint for SecurityHeadersEndpoint<E> {
    type Output = Response;
    async fn call(&self, req: Request) -> Result<Self::Output> {
        let https = req.data::<WebSettings>().map(|s| s.https).unwrap_or(false);
        let mut resp = match self.0.call(req).await {
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
}
