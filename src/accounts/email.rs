//! Email addresses as the portal compares them: trimmed, Unicode NFC, domain in
//! lower case; the comparison key is the whole address in lower case.

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
        if !canonical_domain(&domain) {
            return Err(InvalidEmail);
        }
        if local.contains(['<', '>', '"', ',', ';', '(', ')', '[', ']', '\\']) {
            return Err(InvalidEmail);
        }
        let address = format!("{local}@{domain}");
        if address.parse::<lettre::Address>().is_err() {
            return Err(InvalidEmail);
        }
        Ok(Email {
            key: address.to_lowercase(),
            address,
        })
    }

    /// `j***@example.com`, for telling an old address where its mail now goes.
    pub fn masked(&self) -> String {
        let (local, domain) = self.address.rsplit_once('@').unwrap_or((&self.address, ""));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

/// Whether `domain` (lower case, NFC) is written as mail systems resolve it. They
/// map a domain through IDNA, which turns fullwidth `ｅ`, `ℯ` or an ideographic
/// full stop into `e` and `.`: such spellings would reach the same mailbox under
/// another key (another code budget, another portal), so they are refused.
fn canonical_domain(domain: &str) -> bool {
    if domain.is_ascii() {
        return true;
    }
    let Ok(ascii) = idna::domain_to_ascii(domain) else {
        return false;
    };
    let (unicode, result) = idna::domain_to_unicode(&ascii);
    result.is_ok() && unicode == domain
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
        assert!(Email::parse("j@xn--bcher-kva.example").is_ok());
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
