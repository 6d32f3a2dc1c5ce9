//! How an email address is shown to staff. An address can imitate another with
//! letters from a second alphabet that look Latin (a Cyrillic `а` in `exаmple.com`),
//! with a word written wholly in such letters (`аррӏе.com`, all Cyrillic), or with
//! invisible characters. Such an address is shown in its ASCII form (punycode,
//! `xn--...`), which makes the difference visible, with a warning beside it.

/// Alphabets whose letters are easily mistaken for Latin ones, or for each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Cyrillic,
    Greek,
    Armenian,
    Cherokee,
    /// Any other alphabet (CJK, Arabic, ...): mixing it with Latin is ordinary.
    Other,
}

fn script(c: char) -> Option<Script> {
    if !c.is_alphabetic() {
        return None;
    }
    Some(match u32::from(c) {
        0x41..=0x5A
        | 0x61..=0x7A
        | 0xAA
        | 0xBA
        | 0xC0..=0x24F
        | 0x1E00..=0x1EFF
        | 0x2C60..=0x2C7F
        | 0xA720..=0xA7FF
        | 0xAB30..=0xAB6F => Script::Latin,
        0x370..=0x3FF | 0x1F00..=0x1FFF => Script::Greek,
        0x400..=0x52F | 0x1C80..=0x1C8F | 0x2DE0..=0x2DFF | 0xA640..=0xA69F => Script::Cyrillic,
        0x530..=0x58F => Script::Armenian,
        0x13A0..=0x13FF | 0xAB70..=0xABBF => Script::Cherokee,
        _ => Script::Other,
    })
}

/// Non-Latin letters that look like Latin ones.
const LATIN_LOOKALIKES: &str = "аАвВеЕзЗіІјЈкКмМнНоОрРсСтТуУхХѕЅԁԛԝӏүһ\
αΑΒεΕΖΗιΙκΚΜνΝοΟρΡτΤυΥχΧ\
օսհոցզ\
ᎪᏴᏟᎬᎻᎫᏦᏞᎷᏢᏚᎢᏙᏔᏃ";

/// Characters with no business in an address shown to a person: ones that show
/// as nothing (zero-width spaces and joiners, direction marks, variation
/// selectors), loose combining marks (left over after NFC, they can overlay a
/// letter), and styled copies of Latin letters and digits (fullwidth `ｅ`,
/// mathematical `𝐞`, letterlike `ℯ`, circled `ⓔ`).
fn suspicious_char(c: char) -> bool {
    matches!(u32::from(c),
        0xAD | 0x300..=0x36F | 0x61C | 0x115F..=0x1160 | 0x17B4..=0x17B5
        | 0x180B..=0x180F | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F
        | 0x2100..=0x214F | 0x2460..=0x24FF | 0x3164 | 0xFE00..=0xFE0F | 0xFEFF
        | 0xFF00..=0xFFEF | 0x1BCA0..=0x1BCA3 | 0x1D400..=0x1D7FF | 0x1F100..=0x1F1FF
        | 0xE0000..=0xE0FFF)
}

/// Whether one word (a run of letters and digits) could pass for another: letters
/// of two confusable alphabets, or only non-Latin letters that look Latin.
fn deceptive_word(word: &str) -> bool {
    let mut seen: Option<Script> = None;
    let mut all_lookalikes = true;
    let mut any_letter = false;
    for s in word.chars().filter_map(script) {
        any_letter = true;
        if s == Script::Other {
            all_lookalikes = false;
            continue;
        }
        match seen {
            Some(prev) if prev != s => return true,
            _ => seen = Some(s),
        }
    }
    for c in word.chars().filter(|c| c.is_alphabetic()) {
        all_lookalikes &= LATIN_LOOKALIKES.contains(c);
    }
    any_letter && all_lookalikes && seen.is_some_and(|s| s != Script::Latin)
}

/// Whether `address` may imitate another address.
pub fn is_deceptive(address: &str) -> bool {
    address.chars().any(suspicious_char)
        || address
            .split(|c: char| !c.is_alphanumeric())
            .any(deceptive_word)
}

/// The address with every non-ASCII dot-separated piece (of the local part and
/// of the domain) as `xn--` and its punycode. For a domain that is its IDNA ASCII
/// form; unlike IDNA, nothing is mapped first (a fullwidth `ｅ` does not become
/// `e`), since the point is to show how the address differs.
pub fn ascii_form(address: &str) -> String {
    let encode = |part: &str| {
        part.split('.')
            .map(punycode_piece)
            .collect::<Vec<_>>()
            .join(".")
    };
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{}@{}", encode(local), encode(domain)),
        None => encode(address),
    }
}

fn punycode_piece(piece: &str) -> String {
    if piece.is_ascii() {
        return piece.to_string();
    }
    match idna::punycode::encode_str(piece) {
        Some(encoded) => format!("xn--{encoded}"),
        None => piece.escape_unicode().to_string(),
    }
}

/// HTML for showing `address` to staff: as it is, or, if it may imitate another,
/// in ASCII form with a warning.
pub fn staff_html(address: &str) -> String {
    let escape = |s: &str| minijinja::HtmlEscape(s).to_string();
    if !is_deceptive(address) {
        return escape(address);
    }
    format!(
        "<span class=\"address-deceptive\">{}</span> <strong class=\"address-warning\">\
         Warning: this address mixes alphabets or hides characters, so it may imitate \
         another address. It is shown in its ASCII form.</strong>",
        escape(&ascii_form(address))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_pass() {
        for ok in [
            "jane.doe@example.com",
            "josé@example.com",
            "иван@пример.рф",
            "jane@пример.com",
            "山田@例え.jp",
            "tanaka.山田@example.com",
            "müller-lüdenscheid@straße.de",
        ] {
            assert!(!is_deceptive(ok), "{ok}");
        }
    }

    #[test]
    fn imitations_are_caught() {
        for bad in [
            "jane@ex\u{430}mple.com", // Cyrillic а among Latin letters
            "j\u{430}ne@example.com", // in the local part
            "jane@\u{430}\u{440}\u{440}\u{4cf}\u{435}.com", // аррӏе: all Cyrillic lookalikes
            "jane@g\u{3bf}\u{3bf}gle.com", // Greek omicrons
            "ja\u{200b}ne@example.com", // zero-width space
            "jane@\u{ff45}xample.com", // fullwidth e
            "jane@\u{1d41e}xample.com", // mathematical bold e
            "jane@exa\u{301}\u{335}mple.com", // a loose combining overlay
        ] {
            assert!(is_deceptive(bad), "{bad}");
        }
    }

    #[test]
    fn ascii_form_shows_the_difference() {
        let shown = ascii_form("j\u{430}ne@ex\u{430}mple.com");
        assert!(shown.is_ascii(), "{shown}");
        assert!(
            shown.starts_with("xn--") && shown.contains("@xn--"),
            "{shown}"
        );
        assert_eq!(ascii_form("jane@example.com"), "jane@example.com");
        assert_eq!(
            ascii_form("jane@ex\u{430}mple.com"),
            "jane@xn--exmple-4nf.com"
        );
        assert_ne!(ascii_form("jane@\u{ff45}xample.com"), "jane@example.com");
        let html = staff_html("<b>@ex\u{430}mple.com");
        assert!(
            html.contains("&lt;b&gt;") && html.contains("Warning"),
            "{html}"
        );
        assert_eq!(staff_html("a&b@example.com"), "a&amp;b@example.com");
    }
}
