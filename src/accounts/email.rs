//! Email addresses as the portal compares them: trimmed, Unicode NFC, domain in
//! lower case; the comparison key is the address in lower case with the domain in
//! its Unicode form.

use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// As shown and as mail is addressed.
    pub address: String,
    /// For uniqueness and look-ups.
    pub key: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Enter a valid email address, such as name@example.com.")]
pub struct InvalidEmail;

impl Email {
    pub fn parse(input: &str) -> Result<Email, InvalidEmail> {
        let trimmed: String = input.trim().nfc().collect();
        if trimmed.len() > 254
            || trimmed
                .chars()
                .any(|c| c.is_whitespace() || crate::infra::text::is_invisible(c))
        {
            return Err(InvalidEmail);
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or(InvalidEmail)?;
        let domain = domain.to_lowercase();
        let labels_ok = domain.split('.').count() >= 2 && domain.split('.').all(|l| !l.is_empty());
        if local.is_empty() || local.len() > 64 || local.contains('@') || !labels_ok {
            return Err(InvalidEmail);
        }
        let domain_key = domain_key(&domain).ok_or(InvalidEmail)?;
        if local.contains(['<', '>', '"', ',', ';', '(', ')', '[', ']', '\\']) {
            return Err(InvalidEmail);
        }
        let address = format!("{local}@{domain}");
        if address.parse::<lettre::Address>().is_err() {
            return Err(InvalidEmail);
        }
        Ok(Email {
            key: format!("{}@{domain_key}", local.to_lowercase()),
            address,
        })
    }

    /// The comparison key of an address the portal stored (so already valid); one
    /// that no longer parses is keyed by its lower case.
    pub fn key_of(address: &str) -> String {
        Email::parse(address).map_or_else(|_| address.to_lowercase(), |e| e.key)
    }

    /// `j***@example.com`, for telling an old address where its mail now goes.
    pub fn masked(&self) -> String {
        let (local, domain) = self.address.rsplit_once('@').unwrap_or((&self.address, ""));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

/// The domain as it is compared: its Unicode form, so that `bücher.example` and
/// `xn--bcher-kva.example` (one mailbox) share a key, a code budget and a portal.
/// `None` for a domain not written as mail systems resolve it: they map a domain
/// through IDNA, which turns fullwidth `ｅ`, `ℯ` or an ideographic full stop into
/// `e` and `.`, and such spellings would reach the same mailbox under another key.
fn domain_key(domain: &str) -> Option<String> {
    let idna = !domain.is_ascii() || domain.split('.').any(|l| l.starts_with("xn--"));
    if !idna {
        return Some(domain.to_string());
    }
    let ascii = idna::domain_to_ascii(domain).ok()?;
    let (unicode, result) = idna::domain_to_unicode(&ascii);
    result.ok()?;
    (domain.is_ascii() || unicode == domain).then_some(unicode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_keys_case_insensitively() {
        let e = Email::parse("  Jane.Doe@Example.COM ").unwrap();
        assert_eq!(e.address, "Jane.Doe@example.com");
        assert_eq!(e.key, "jane.doe@example.com");
        let composed = Email::parse("jose\u{301}@example.com").unwrap();
        assert_eq!(composed.address, "jos\u{e9}@example.com");
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for bad in [
            "",
            "plain",
            "a@b",
            "@example.com",
            "a b@example.com",
            "a@@example.com",
            "a@example..com",
            "<a>@x.com",
            "a@example.com.",
            "a@\u{ff45}xample.com",
            "a@example\u{3002}com",
            "a@\u{212f}xample.com",
        ] {
            assert_eq!(Email::parse(bad), Err(InvalidEmail), "{bad}");
        }
    }

    #[test]
    fn internationalised_domains_as_typed_are_kept() {
        let e = Email::parse("J@B\u{dc}CHER.example").unwrap();
        assert_eq!(e.key, "j@b\u{fc}cher.example");
        // The ASCII (punycode) spelling is the same mailbox, so the same key.
        let ascii = Email::parse("j@xn--bcher-kva.example").unwrap();
        assert_eq!(ascii.key, e.key);
        assert_eq!(ascii.address, "j@xn--bcher-kva.example");
        assert!(Email::parse("j@stra\u{df}e.example").is_ok());
    }

    #[test]
    fn masks() {
        assert_eq!(
            Email::parse("jane@example.com").unwrap().masked(),
            "j***@example.com"
        );
    }
}
