//! Value types of the configuration that check themselves while it is read, so
//! a bad value is refused naming its key (see `super::Sources::explain`) and the
//! rest of the program gets values it can use as they are.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// A secret such as the SMTP password. Its `Debug` form is `***`, so a
/// configuration printed for debugging or logged never shows it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(#[serde(deserialize_with = "super::text")] String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "(empty)" } else { "***" })
    }
}

/// A colour written `#rrggbb` (or `#rgb`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Colour(String);

impl Colour {
    /// One of the program's own defaults (known to be well formed).
    pub(super) fn builtin(hex: &'static str) -> Self {
        Colour(hex.to_string())
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Colour {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix('#').unwrap_or("");
        if matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(Colour(s.to_string()))
        } else {
            Err("expected a colour such as #1d4f73")
        }
    }
}

impl<'de> Deserialize<'de> for Colour {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = super::text(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A sender such as `Firm <portal@example.com>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox(lettre::message::Mailbox);

impl Mailbox {
    /// One of the program's own defaults.
    #[allow(clippy::expect_used)] // constants that parse; checked by a test
    pub(super) fn builtin(text: &'static str) -> Self {
        Mailbox(text.parse().expect("a valid constant address"))
    }

    pub fn get(&self) -> &lettre::message::Mailbox {
        &self.0
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Mailbox {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Mailbox {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = super::text(d)?;
        text.trim().parse().map(Mailbox).map_err(|_| {
            serde::de::Error::custom("expected an address such as \"Firm <portal@example.com>\"")
        })
    }
}

/// The address and port to listen on, read as text (`127.0.0.1:8080`).
pub fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = super::text(d)?;
    text.trim().parse().map_err(|_| {
        serde::de::Error::custom("expected an address and port such as 127.0.0.1:8080")
    })
}

/// An `http://` or `https://` URL with a host, read as text.
pub fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
    let text = super::text(d)?;
    match url::Url::parse(text.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        _ => Err(serde::de::Error::custom(
            "expected an http:// or https:// URL such as https://portal.example.com",
        )),
    }
}

/// `http://localhost:8080`, where the portal answers out of the box.
#[allow(clippy::expect_used)] // a constant that parses; checked by a test
pub fn default_public_url() -> url::Url {
    url::Url::parse("http://localhost:8080").expect("a valid constant URL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s = Secret::new("hunter2hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "hunter2hunter2");
        assert_eq!(format!("{:?}", Secret::default()), "(empty)");
    }

    #[test]
    fn the_default_sender_parses() {
        let sender = Mailbox::builtin("Client Portal <portal@localhost>");
        assert_eq!(sender.get().email.to_string(), "portal@localhost");
    }

    #[test]
    fn the_default_public_url_is_localhost() {
        assert_eq!(default_public_url().as_str(), "http://localhost:8080/");
    }

    #[test]
    fn colours_are_hex() {
        assert!("#1d4f73".parse::<Colour>().is_ok());
        assert!("#abc".parse::<Colour>().is_ok());
        for bad in ["1d4f73", "#12345", "#gggggg", "red", ""] {
            assert!(bad.parse::<Colour>().is_err(), "{bad}");
        }
    }
}
