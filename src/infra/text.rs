//! Text typed by people and shown to other people: file, folder and person names.
//!
//! Invisible characters can make a name display as something else: a
//! right-to-left override turns `invoice\u{202E}fdp.exe` into what looks like
//! "invoiceexe.pdf", and zero-width characters make two different names look
//! alike. Every name passes through [`strip_invisible`] before it is stored.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Whether `c` is a character that changes how text displays without showing
/// itself: controls (Cc), format characters (Cf: bidirectional overrides and
/// isolates, zero-width spaces and joiners, the byte-order mark, soft hyphen,
/// invisible operators, tags) and line or paragraph separators (Zl, Zp).
pub fn is_invisible(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// `input` without its invisible characters (see [`is_invisible`]).
pub fn strip_invisible(input: &str) -> String {
    input.chars().filter(|c| !is_invisible(*c)).collect()
}

/// A folder path made of up to four parts separated by `/`, each trimmed and
/// free of control and format characters; `None` when nothing usable is left.
pub fn folder_path(input: &str) -> Option<String> {
    let parts: Vec<String> = strip_invisible(input)
        .split('/')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty() && p != "." && p != "..")
        .collect();
    if parts.is_empty() || parts.len() > 4 || parts.iter().any(|p| p.chars().count() > 60) {
        return None;
    }
    Some(parts.join(" / "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_control_characters_go() {
        assert_eq!(strip_invisible("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        let every_kind = "a\u{202A}\u{202B}\u{202C}\u{202D}\u{202E}\u{2066}\u{2067}\u{2068}\u{2069}\
                          \u{200B}\u{200C}\u{200D}\u{200E}\u{200F}\u{FEFF}\u{AD}\u{61C}\u{2060}\
                          \u{E0041}\u{0}\u{7}\r\n\t\u{85}\u{2028}\u{2029}b";
        assert_eq!(strip_invisible(every_kind), "ab");
    }

    #[test]
    fn ordinary_text_stays() {
        for s in [
            "José Müller",
            "O'Brien-Smith",
            "王小明",
            "محمد",
            "W-2 2025.pdf",
            "a b",
        ] {
            assert_eq!(strip_invisible(s), s);
        }
    }
}
