//! Folder paths ("2025 / Returns") and file names as the portal stores them.
//! Both are metadata only: files are stored under server-generated names.
//! Neither keeps invisible characters (see [`strip_invisible`]), so a name shows
//! as what it is.

use crate::infra::text::strip_invisible;

pub use crate::infra::text::folder_path as clean;

/// A file name safe to show and to offer in a download: no path, no control or
/// format characters, reserved characters replaced, at most 150 characters
/// (keeping the extension).
pub fn file_name(input: &str) -> String {
    let visible = strip_invisible(input);
    let base = visible.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .map(|c| if "<>:\"|?*".contains(c) { '_' } else { c })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_string();
    let cleaned = if cleaned.is_empty() {
        "file".to_string()
    } else {
        cleaned
    };
    if cleaned.chars().count() <= 150 {
        return cleaned;
    }
    let (stem, ext) = match cleaned.rsplit_once('.') {
        Some((s, e)) if e.len() <= 10 => (s.to_string(), format!(".{e}")),
        _ => (cleaned.clone(), String::new()),
    };
    let keep = 150 - ext.chars().count();
    format!("{}{ext}", stem.chars().take(keep).collect::<String>())
}

/// The extension, lower-cased ("pdf"), for the file-type filter.
pub fn extension(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((_, ext)) if !ext.is_empty() && ext.len() <= 10 => ext.to_lowercase(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_normalised() {
        assert_eq!(clean(" 2025/Returns ").as_deref(), Some("2025 / Returns"));
        assert_eq!(clean("../../etc").as_deref(), Some("etc"));
        assert_eq!(clean(" / "), None);
        assert_eq!(clean("a/b/c/d/e"), None);
        assert_eq!(
            clean("20\u{2066}25/\u{202E}snruteR").as_deref(),
            Some("2025 / snruteR")
        );
    }

    #[test]
    fn file_names_lose_paths_and_odd_characters() {
        assert_eq!(file_name("../../etc/passwd"), "passwd");
        assert_eq!(file_name("C:\\Users\\jane\\W-2.pdf"), "W-2.pdf");
        assert_eq!(file_name(".htaccess"), "htaccess");
        assert_eq!(file_name("a\r\nb<script>.pdf"), "ab_script_.pdf");
        assert_eq!(file_name("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(file_name("\u{200B}\u{FEFF}"), "file");
        assert_eq!(file_name(""), "file");
        let long = format!("{}.pdf", "x".repeat(300));
        assert!(file_name(&long).ends_with(".pdf") && file_name(&long).chars().count() == 150);
        assert_eq!(extension("Scan.JPG"), "jpg");
    }
}
