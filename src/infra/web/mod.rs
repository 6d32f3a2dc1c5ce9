//! Web machinery shared by every capability: cookies, CSRF, security headers,
//! request logging, client addresses. Knows nothing about capabilities.

pub mod cookies;
pub mod csrf;
pub mod headers;
pub mod page;

use poem::Request;

/// Settings the web layer needs, attached to every request as data.
#[derive(Clone)]
pub struct WebSettings {
    pub https: bool,
    pub trust_proxy_headers: bool,
    pub cookies: cookies::CookieNames,
    /// `scheme://host[:port]` of `server.public_url`, for telling own requests from
    /// cross-site ones.
    pub public_origin: String,
}

/// The client's IP address: the socket peer, or, when the portal is configured to
/// run behind a reverse proxy, the last `X-Forwarded-For` entry (the one the proxy
/// added; earlier entries come from the client and could be forged).
pub fn client_ip(req: &Request) -> String {
    let trust = req
        .data::<WebSettings>()
        .map(|s| s.trust_proxy_headers)
        .unwrap_or(false);
    if trust
        && let Some(first) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| v.parse::<std::net::IpAddr>().is_ok())
    {
        return first.to_string();
    }
    match req.remote_addr().as_socket_addr() {
        Some(addr) => addr.ip().to_string(),
        None => "unknown".into(),
    }
}

pub fn user_agent(req: &Request) -> String {
    let ua = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    ua.chars().take(300).collect()
}

/// A local path to go to after signing in; anything else becomes `/`.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        // Browsers drop tabs and newlines in a Location, so "/\t/evil" would become
        // "//evil": only printable ASCII without backslashes is allowed.
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && p.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
                && !p.contains("://") =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redirects_stay_local() {
        assert_eq!(super::local_path(Some("/security")), "/security");
        assert_eq!(super::local_path(Some("//evil.example")), "/");
        assert_eq!(super::local_path(Some("https://evil.example")), "/");
        assert_eq!(super::local_path(Some("/\\evil.example")), "/");
        assert_eq!(super::local_path(Some("/\t/evil.example")), "/");
        assert_eq!(super::local_path(Some("/ /evil.example")), "/");
        assert_eq!(
            super::local_path(Some("/security?tab=pin")),
            "/security?tab=pin"
        );
        assert_eq!(super::local_path(None), "/");
    }
}

/// Who is making a request, as the services see it (no poem types beyond here).
#[derive(Debug, Clone)]
pub struct Visitor {
    pub ip: String,
    pub user_agent: String,
}

impl Visitor {
    pub fn of(req: &Request) -> Self {
        Visitor {
            ip: client_ip(req),
            user_agent: user_agent(req),
        }
    }
}
