//! Configuration errors in words for the admin: which key, from which source
//! (`portal.toml` or a `PORTAL_*` variable), what was expected and what was found.

use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Toml};

use super::{ConfigError, ENV_PREFIX};

/// Where the configuration came from, to say which source holds a bad value.
pub(super) struct Sources {
    pub(super) file: Option<PathBuf>,
    pub(super) env: Env,
}

impl Sources {
    /// " (from PORTAL_X__Y)" or " (in FILE)" for the source that set `key`, the
    /// later one winning as in loading.
    fn origin(&self, key: &str) -> String {
        if Figment::from(self.env.clone()).find_value(key).is_ok() {
            let var = key.replace('.', "__").to_ascii_uppercase();
            return format!(" (from {ENV_PREFIX}{var})");
        }
        match &self.file {
            Some(file)
                if Figment::from(Toml::file_exact(file))
                    .find_value(key)
                    .is_ok() =>
            {
                format!(" (in {})", file.display())
            }
            _ => String::new(),
        }
    }

    /// Adds where the value came from to an error found by validation.
    pub(super) fn locate(&self, e: ConfigError) -> ConfigError {
        match e {
            ConfigError::Invalid { key, message, .. } => ConfigError::Invalid {
                origin: self.origin(&key),
                key,
                message,
            },
            other => other,
        }
    }

    /// A figment error in plain words: no profile, provider type or Rust type names.
    pub(super) fn explain(&self, e: figment::Error) -> ConfigError {
        // A list item's position comes after the key: `mail.retry_delays_seconds.1`.
        let item = e.path.iter().position(|p| p.parse::<usize>().is_ok());
        let key = e.path[..item.unwrap_or(e.path.len())].join(".");
        if key.is_empty() {
            let file = self
                .file
                .as_ref()
                .map_or_else(|| "(environment)".into(), |f| f.display().to_string());
            return ConfigError::File {
                file,
                message: e.kind.to_string().trim_end().to_string(),
            };
        }
        let mut message = plain_kind(&key, &e.kind);
        if let Some(n) = item.and_then(|i| e.path[i].parse::<usize>().ok()) {
            message = format!("item {} of the list: {message}", n + 1);
        }
        ConfigError::Invalid {
            origin: self.origin(&key),
            message,
            key,
        }
    }
}

fn plain_kind(key: &str, kind: &figment::error::Kind) -> String {
    use figment::error::Kind;
    match kind {
        Kind::InvalidType(found, expected) | Kind::InvalidValue(found, expected) => format!(
            "expected {}, found {}",
            plain_expected(key, expected),
            plain_actual(found)
        ),
        Kind::UnknownVariant(found, options) => {
            let options: Vec<String> = options.iter().map(|o| format!("\"{o}\"")).collect();
            format!("expected one of {}, found \"{found}\"", options.join(", "))
        }
        other => other.to_string(),
    }
}

/// Serde's name of the expected type, as an admin would say it.
fn plain_expected(key: &str, expected: &str) -> String {
    let whole = |max: u16| format!("a whole number from 0 to {max}");
    match expected {
        "u8" => whole(u8::MAX.into()),
        "u16" => whole(u16::MAX),
        "u32" | "u64" | "usize" => "a whole number (0 or more)".into(),
        "a nonzero u32" | "a nonzero u64" => "a whole number (1 or more)".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a sequence" => "a list such as [\"a\", \"b\"]".into(),
        "a string" | "text" | "path string" => "text in quotes".into(),
        s if s.starts_with("struct ") || s == "a map" => format!("a section of keys ([{key}])"),
        other => other.into(),
    }
}

fn plain_actual(found: &figment::error::Actual) -> String {
    use figment::error::Actual;
    match found {
        Actual::Bool(b) => b.to_string(),
        Actual::Unsigned(n) => n.to_string(),
        Actual::Signed(n) => n.to_string(),
        Actual::Float(n) => n.to_string(),
        Actual::Char(c) => format!("\"{c}\""),
        Actual::Str(s) => format!("\"{}\"", s.escape_debug()),
        Actual::Seq => "a list".into(),
        Actual::Map => "a section of keys".into(),
        Actual::Unit | Actual::Option => "nothing".into(),
        other => other.to_string(),
    }
}
