//! Web machinery shared by every capability: cookies, CSRF, security headers,
//! request logging, client addresses. Knows nothing about capabilities.

pub mod body_rate;
pub mod cookies;
pub mod csrf;
pub mod headers;
pub mod page;
pub mod request_log;
pub mod server;

use std::net::IpAddr;
use std::sync::Arc;

use poem::Request;

/// Settings the web layer needs, attached to every request as data.
#[derive(Clone)]
pub struct WebSettings {
    pub https: bool,
    pub trust_proxy_headers: bool,
    /// The reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    pub cookies: cookies::CookieNames,
    /// `scheme://host[:port]` of `server.public_url`, for telling own requests from
    /// cross-site ones.
    pub public_origin: String,
}

/// The client's IP address. Without a trusted reverse proxy it is the socket
/// peer. When the peer is one of `server.trusted_proxies`, it is the right-most
/// `X-Forwarded-For` address (across every header line) that is not itself a
/// trusted proxy: entries left of it were written by the client and may be forged.
pub fn client_ip(req: &Request) -> String {
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map(|a| a.ip().to_canonical());
    let Some(peer) = peer else {
        return "unknown".into();
    };
    match req.data::<WebSettings>() {
        Some(web) if web.trust_proxy_headers => forwarded_client(req, peer, &web.trusted_proxies),
        _ => peer,
    }
    .to_string()
}

/// Whether `ip` is in one of `nets`, however either is written (an IPv4 address
/// also matches a network listed as IPv4-mapped IPv6, and the other way round).
pub fn listed(nets: &[ipnet::IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    let mapped = match ip {
        IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
        v6 => v6,
    };
    nets.iter()
        .any(|net| net.contains(&ip) || net.contains(&mapped))
}

fn forwarded_client(req: &Request, peer: IpAddr, proxies: &[ipnet::IpNet]) -> IpAddr {
    let trusted = |ip: &IpAddr| listed(proxies, *ip);
    if !trusted(&peer) {
        return peer;
    }
    let entries: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        match parse_forwarded_ip(entry) {
            Some(ip) if trusted(&ip) => client = ip,
            Some(ip) => return ip,
            // Garbage where an address should be: trust nothing further left.
            None => return client,
        }
    }
    client
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:443` or `192.0.2.1:5000`. An IPv4-mapped IPv6 address
/// (`::ffff:192.0.2.1`) is the IPv4 address, so that both spellings of one
/// client count as one.
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    let bare = entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .unwrap_or(entry);
    let ip = match bare.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => entry.parse::<std::net::SocketAddr>().ok()?.ip(),
    };
    Some(ip.to_canonical())
}

/// What per-address limits count under: an IPv4 address, or the /64 network of an
/// IPv6 address (the block one subscriber usually gets, all of whose 2^64
/// addresses are that subscriber's to use). IPv4-mapped addresses count as IPv4.
pub fn network(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 => v4,
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
    fn forwarded_entries_in_every_spelling() {
        let parse = |e: &str| super::parse_forwarded_ip(e).map(|ip| ip.to_string());
        assert_eq!(parse("[2001:db8::1]").as_deref(), Some("2001:db8::1"));
        assert_eq!(parse("[2001:db8::1]:443").as_deref(), Some("2001:db8::1"));
        assert_eq!(parse("192.0.2.1:80").as_deref(), Some("192.0.2.1"));
        assert_eq!(parse("::ffff:192.0.2.1").as_deref(), Some("192.0.2.1"));
        for junk in ["unknown", "", "192.000.2.1", "0xc0.0.2.1", "fe80::1%eth0"] {
            assert_eq!(parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn limits_count_ipv6_per_64_and_mapped_ipv4_as_ipv4() {
        let visitor = |ip: &str| super::Visitor {
            ip: ip.into(),
            user_agent: String::new(),
        };
        assert_eq!(visitor("2001:db8:1:2:aaaa::1").network(), "2001:db8:1:2::");
        assert_eq!(
            visitor("2001:db8:1:2:ffff:ffff:ffff:ffff").network(),
            "2001:db8:1:2::"
        );
        assert_eq!(visitor("::ffff:192.0.2.7").network(), "192.0.2.7");
        assert_eq!(visitor("192.0.2.7").network(), "192.0.2.7");
        assert_eq!(visitor("unknown").network(), "unknown");
    }

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

    /// The key per-address budgets and lockouts count this visitor under: see
    /// [`network`]. Counting single IPv6 addresses would let one subscriber rotate
    /// through its /64 and never reach a limit.
    pub fn network(&self) -> String {
        match self.ip.parse::<IpAddr>() {
            Ok(ip) => network(ip).to_string(),
            Err(_) => self.ip.clone(),
        }
    }
}
