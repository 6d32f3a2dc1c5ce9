//! Typed configuration: embedded defaults < `portal.toml` < `PORTAL_*` environment.
//!
//! Every key has a default (see [`Config::default`]) and is documented in the sample
//! `portal.toml` at the top of the repository. Unknown keys and variables are warned
//! about at start; invalid values are refused with a message naming the key.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::{Figment, Provider};
use serde::{Deserialize, Serialize};

/// A default that must be at least 1, as the `NonZero` type of the field it
/// fills; a 0 here fails the build.
macro_rules! nonzero {
    ($n:literal) => {
        const { std::num::NonZero::new($n).unwrap() }
    };
}

mod errors;
mod values;

use errors::Sources;
pub use values::{Colour, Mailbox, Secret};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: Server,
    pub storage: Storage,
    pub firm: Firm,
    pub branding: Branding,
    pub theme: Theme,
    pub mail: Mail,
    pub accounts: Accounts,
    pub security: Security,
    pub log: Log,
    pub documents: Documents,
    pub retention: Retention,
    pub plugins: Plugins,
    pub tasks: Tasks,
}

/// Tasks (T1–T3).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tasks {
    /// Days before a task's due date on which the client is reminded of an open
    /// task, once each (0 = on the due date); empty turns reminders off.
    pub reminder_days: Vec<u32>,
}

impl Default for Tasks {
    fn default() -> Self {
        Tasks {
            reminder_days: vec![7, 1, 0],
        }
    }
}

impl Tasks {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.reminder_days.len() > 10 || self.reminder_days.iter().any(|d| *d > 90) {
            return invalid(
                "tasks.reminder_days",
                "expected at most 10 numbers of days, each from 0 to 90",
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Documents {
    /// Largest file a client may upload, in MiB.
    pub max_file_mb: NonZeroU64,
    /// Most files in one upload batch.
    pub max_files_per_upload: NonZeroU32,
    /// Total size of a client's uploads kept in the portal, in MiB.
    pub client_quota_mb: NonZeroU64,
    /// Folders a client can choose when sending files; the first is the default.
    pub upload_folders: Vec<String>,
    /// Index the text inside PDFs for search. The index (`<data_dir>/search`) is
    /// not encrypted, so it holds those words in the clear; `false` indexes only
    /// names, folders and messages.
    pub index_text: bool,
    /// PDFs up to this size (MiB) have their text indexed for search.
    pub index_text_max_mb: u64,
    /// Files a client may start sending in any hour.
    pub uploads_per_hour: u32,
    /// Memory (address space, MiB) the process that reads a PDF's text may use.
    pub extract_memory_mb: u64,
    /// Seconds (wall clock and processor) that process may run.
    pub extract_seconds: u64,
    /// The program run as `<program> extract-text`; empty means this portal program.
    #[serde(deserialize_with = "text")]
    pub extract_program: String,
}

impl Documents {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.upload_folders.is_empty()
            || self
                .upload_folders
                .iter()
                .any(|f| crate::infra::text::folder_path(f).is_none())
        {
            return invalid(
                "documents.upload_folders",
                "expected a list of folder names such as [\"Uploaded\"]",
            );
        }
        within(&[
            (
                "documents.uploads_per_hour",
                self.uploads_per_hour.into(),
                1..=100_000,
            ),
            (
                "documents.extract_memory_mb",
                self.extract_memory_mb,
                128..=65536,
            ),
            ("documents.extract_seconds", self.extract_seconds, 1..=3600),
        ])?;
        if !self.extract_program.is_empty() && !Path::new(&self.extract_program).is_file() {
            return invalid("documents.extract_program", "the file does not exist");
        }
        Ok(())
    }
}

impl Default for Documents {
    fn default() -> Self {
        Documents {
            max_file_mb: nonzero!(2048),
            max_files_per_upload: nonzero!(20),
            client_quota_mb: nonzero!(10240),
            upload_folders: vec!["Uploaded".into()],
            index_text: true,
            index_text_max_mb: 64,
            uploads_per_hour: 200,
            extract_memory_mb: 512,
            extract_seconds: 20,
            extract_program: String::new(),
        }
    }
}

/// The WebAssembly plugin host: where task-type plugins are, and the limits
/// of every call into one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Plugins {
    /// Directory of `*.wasm` plugins; empty means `<data_dir>/plugins`.
    #[serde(deserialize_with = "text")]
    pub dir: String,
    /// Memory (MiB) one call of a plugin may use.
    pub memory_mb: u64,
    /// Milliseconds one call of a plugin may run.
    pub call_ms: u64,
    /// Log lines one call of a plugin may write.
    pub max_log_lines: u32,
}

impl Plugins {
    fn validate(&self) -> Result<(), ConfigError> {
        within(&[
            ("plugins.memory_mb", self.memory_mb, 1..=4096),
            ("plugins.call_ms", self.call_ms, 5..=60_000),
            (
                "plugins.max_log_lines",
                u64::from(self.max_log_lines),
                1..=10_000,
            ),
        ])?;
        if !self.dir.is_empty() && Path::new(&self.dir).is_file() {
            return invalid("plugins.dir", "expected a directory, found a file");
        }
        Ok(())
    }
}

impl Default for Plugins {
    fn default() -> Self {
        Plugins {
            dir: String::new(),
            memory_mb: 16,
            call_ms: 100,
            max_log_lines: 100,
        }
    }
}

/// Portal maintenance (D9). Zero days turns a rule off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Remove a client's upload this many days after the firm saved it.
    pub remove_saved_uploads_after_days: u32,
    /// Unpublish documents the firm published this many days ago (tax returns excepted, see below).
    pub unpublish_after_days: u32,
    /// Keep a published tax return until the next year's return is published.
    pub keep_returns_until_next_year: bool,
    /// How often the maintenance job runs, in minutes.
    pub run_every_minutes: NonZeroU32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            remove_saved_uploads_after_days: 30,
            unpublish_after_days: 365,
            keep_returns_until_next_year: true,
            run_every_minutes: nonzero!(60),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    /// Address and port to listen on.
    #[serde(deserialize_with = "values::socket_addr")]
    pub listen: SocketAddr,
    /// The URL clients use to reach the portal (may be a custom domain). Links in
    /// emails point here; an `https://` URL turns on Secure `__Host-` cookies and HSTS.
    #[serde(deserialize_with = "values::http_url")]
    pub public_url: url::Url,
    /// Take the client address from `X-Forwarded-For` (only behind a reverse proxy).
    pub trust_proxy_headers: bool,
    /// Addresses or networks (CIDR) of the reverse proxies whose `X-Forwarded-For`
    /// is believed; the header from any other peer is ignored.
    pub trusted_proxies: Vec<String>,
    /// Open connections at most; further clients wait until one closes.
    pub max_connections: NonZeroU32,
    /// Open connections from one IP address at most (0: no per-address limit).
    pub max_connections_per_ip: u32,
    /// Seconds a client has to send a request's headers (and to start the next
    /// request on a kept-alive connection).
    pub header_timeout_seconds: NonZeroU32,
    /// Seconds of grace for a request body, extended by one second for every
    /// `body_min_bytes_per_second` bytes received.
    pub body_timeout_seconds: NonZeroU32,
    pub body_min_bytes_per_second: u32,
    /// Seconds a response may wait on a client that reads nothing.
    pub send_timeout_seconds: NonZeroU32,
}

impl Server {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Err(entry) = self.proxy_networks() {
            return invalid(
                "server.trusted_proxies",
                &format!("`{entry}` is not an IP address or network such as 10.0.0.0/8"),
            );
        }
        Ok(())
    }

    /// The parsed `trusted_proxies`, or the first entry that is not an address or
    /// network.
    pub fn proxy_networks(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.trusted_proxies
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| entry.to_string())
            })
            .collect()
    }
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: values::default_public_url(),
            trust_proxy_headers: false,
            trusted_proxies: vec!["127.0.0.1".into(), "::1".into()],
            max_connections: nonzero!(512),
            max_connections_per_ip: 64,
            header_timeout_seconds: nonzero!(20),
            body_timeout_seconds: nonzero!(30),
            body_min_bytes_per_second: 500,
            send_timeout_seconds: nonzero!(60),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    /// Directory holding the database, documents, keys and the mail outbox.
    pub data_dir: PathBuf,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            data_dir: PathBuf::from("./data"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Firm {
    #[serde(deserialize_with = "text")]
    pub name: String,
    #[serde(deserialize_with = "text")]
    pub email: String,
    #[serde(deserialize_with = "text")]
    pub phone: String,
    #[serde(deserialize_with = "text")]
    pub address: String,
    #[serde(deserialize_with = "text")]
    pub website: String,
    #[serde(deserialize_with = "text")]
    pub hours: String,
}

impl Default for Firm {
    fn default() -> Self {
        Firm {
            name: "Your Tax Firm".into(),
            email: String::new(),
            phone: String::new(),
            address: String::new(),
            website: String::new(),
            hours: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Branding {
    /// Path to a logo image (PNG, JPEG, SVG or WebP); empty shows the firm name.
    #[serde(deserialize_with = "text")]
    pub logo: String,
    /// Main colour of headers and buttons, as `#rrggbb`.
    pub primary_color: Colour,
    /// Colour of links and highlights, as `#rrggbb`.
    pub accent_color: Colour,
}

impl Default for Branding {
    fn default() -> Self {
        Branding {
            logo: String::new(),
            primary_color: Colour::builtin("#1d4f73"),
            accent_color: Colour::builtin("#0b6e4f"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Theme {
    /// A directory whose files override the embedded default theme (templates/, static/).
    #[serde(deserialize_with = "text")]
    pub dir: String,
    /// Make a template that prints, loops over or looks into an undefined variable
    /// fail instead of rendering it as empty. For trying out a theme and for the
    /// test suite; production keeps lenient rendering so a theme written for an
    /// older release still shows its pages.
    pub strict_variables: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// STARTTLS upgrade on a plain connection (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (only for a relay on the same machine).
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mail {
    /// Sender address of every email.
    pub from: Mailbox,
    /// SMTP server; empty writes mail to the outbox directory as `.eml` files.
    #[serde(deserialize_with = "text")]
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_security: SmtpSecurity,
    #[serde(deserialize_with = "text")]
    pub smtp_username: String,
    pub smtp_password: Secret,
    /// Where `.eml` files go when no SMTP server is set; empty means `<data_dir>/outbox`.
    #[serde(deserialize_with = "text")]
    pub outbox_dir: String,
    /// Attempts before a message is marked failed (with backoff up to an hour).
    pub max_attempts: NonZeroU32,
    /// Addresses that receive staff notifications; empty means every staff member.
    pub staff_notify: Vec<String>,
    /// Client uploads are announced to staff in one email per client this many
    /// minutes after the first file of a batch.
    pub staff_notify_batch_minutes: u32,
    /// Seconds to wait for each step of an SMTP conversation (connecting, the
    /// greeting, each command, the message itself).
    pub timeout_seconds: u32,
    /// Seconds one delivery attempt may take in all; past it the attempt is
    /// abandoned and retried later.
    pub send_timeout_seconds: u32,
    /// Seconds to wait before each retry of a message that could not be
    /// delivered (first retry, second, ...); the last delay repeats.
    pub retry_delays_seconds: Vec<u32>,
    /// Seconds between attempts for mail that expires (access codes): retried
    /// this often until its code expires, then dropped.
    pub code_retry_seconds: u32,
}

impl Default for Mail {
    fn default() -> Self {
        Mail {
            from: Mailbox::builtin("Client Portal <portal@localhost>"),
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_security: SmtpSecurity::Starttls,
            smtp_username: String::new(),
            smtp_password: Secret::default(),
            outbox_dir: String::new(),
            max_attempts: nonzero!(30),
            staff_notify: Vec::new(),
            staff_notify_batch_minutes: 5,
            timeout_seconds: 10,
            send_timeout_seconds: 30,
            retry_delays_seconds: vec![60, 120, 300, 600, 1800, 3600],
            code_retry_seconds: 15,
        }
    }
}

impl Mail {
    /// The delivery timings: timeouts and the retry schedule.
    fn validate(&self) -> Result<(), ConfigError> {
        if self
            .staff_notify
            .iter()
            .any(|a| a.trim().parse::<lettre::Address>().is_err())
        {
            return invalid("mail.staff_notify", "expected a list of email addresses");
        }
        within(&[
            (
                "mail.staff_notify_batch_minutes",
                self.staff_notify_batch_minutes.into(),
                1..=1440,
            ),
            ("mail.timeout_seconds", self.timeout_seconds.into(), 1..=300),
        ])?;
        self.validate_delivery()
    }

    /// The delivery timings: timeouts and the retry schedule.
    fn validate_delivery(&self) -> Result<(), ConfigError> {
        if self.send_timeout_seconds < self.timeout_seconds || self.send_timeout_seconds > 600 {
            return invalid(
                "mail.send_timeout_seconds",
                "must be at least mail.timeout_seconds and at most 600",
            );
        }
        if self.retry_delays_seconds.is_empty()
            || self
                .retry_delays_seconds
                .iter()
                .any(|d| !(1..=86_400).contains(d))
        {
            return invalid(
                "mail.retry_delays_seconds",
                "expected a list of delays in seconds, each between 1 and 86400, such as [60, 300, 3600]",
            );
        }
        within(&[(
            "mail.code_retry_seconds",
            self.code_retry_seconds.into(),
            1..=600,
        )])
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Signup {
    /// Only addresses the firm invited may create an account.
    Invited,
    /// Anyone may create an account.
    Open,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Accounts {
    pub signup: Signup,
    pub session_idle_minutes: NonZeroU32,
    pub session_max_hours: NonZeroU32,
    pub trusted_device_days: NonZeroU32,
    pub code_ttl_minutes: u32,
    pub code_max_attempts: NonZeroU32,
    pub codes_per_email_per_hour: NonZeroU32,
    pub codes_per_ip_per_hour: NonZeroU32,
    /// Wrong PINs (or staff passwords) in a row before the first short lockout.
    pub lockout_after: NonZeroU32,
    /// Code emails per hour for one account once its holder has proven who they
    /// are (right PIN, trusted device, signed-in session); strangers cannot spend it.
    pub codes_per_account_per_hour: NonZeroU32,
    /// Wrong authenticator codes in a row after which a staff account is locked
    /// until `portal staff unlock`, and the staff member is emailed.
    pub staff_totp_max_failures: NonZeroU32,
}

impl Accounts {
    fn validate(&self) -> Result<(), ConfigError> {
        within(&[(
            "accounts.code_ttl_minutes",
            self.code_ttl_minutes.into(),
            1..=10,
        )])?;
        if self.lockout_after.get() > 20 {
            return invalid("accounts.lockout_after", "must be at most 20");
        }
        if self.staff_totp_max_failures.get() > 100 {
            return invalid("accounts.staff_totp_max_failures", "must be at most 100");
        }
        Ok(())
    }
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts {
            signup: Signup::Invited,
            session_idle_minutes: nonzero!(30),
            session_max_hours: nonzero!(12),
            trusted_device_days: nonzero!(90),
            code_ttl_minutes: 10,
            code_max_attempts: nonzero!(5),
            codes_per_email_per_hour: nonzero!(8),
            codes_per_ip_per_hour: nonzero!(30),
            lockout_after: nonzero!(5),
            codes_per_account_per_hour: nonzero!(10),
            staff_totp_max_failures: nonzero!(20),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Security {
    /// argon2id memory cost in KiB (OWASP: at least 19456).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
}

impl Security {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.argon2_memory_kib < 8 || self.argon2_iterations == 0 {
            return invalid(
                "security.argon2_memory_kib",
                "argon2 parameters are too small",
            );
        }
        if crate::infra::crypto::PasswordHasher::new(self).is_err() {
            return invalid(
                "security.argon2_memory_kib",
                "argon2 parameters are not valid",
            );
        }
        Ok(())
    }
}

impl Default for Security {
    fn default() -> Self {
        Security {
            argon2_memory_kib: 19456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// `error`, `warn`, `info`, `debug` or a tracing filter such as `portal=debug`.
    #[serde(deserialize_with = "text")]
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
        }
    }
}

/// What is wrong with the configuration, in words for the admin: the key, where
/// its value came from (`origin`, e.g. " (in portal.toml)"), and what is expected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read or is not valid TOML.
    #[error("configuration file {file}: {message}")]
    File { file: String, message: String },
    #[error("configuration key `{key}`{origin}: {message}")]
    Invalid {
        key: String,
        origin: String,
        message: String,
    },
}

/// Prefix of the environment variables that set configuration keys.
const ENV_PREFIX: &str = "PORTAL_";

/// A loaded configuration plus the warnings found while loading it.
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

impl Config {
    /// Loads defaults, then `file` (if it exists), then `PORTAL_*` variables
    /// (`PORTAL_SERVER__LISTEN` sets `server.listen`).
    pub fn load(file: Option<&Path>) -> Result<Loaded, ConfigError> {
        let env = Env::prefixed(ENV_PREFIX).split("__");
        Self::load_from(file, env)
    }

    fn load_from(file: Option<&Path>, env: Env) -> Result<Loaded, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let mut warnings = Vec::new();
        let mut user = Figment::new();
        if let Some(path) = file {
            if path.exists() {
                figment = figment.merge(Toml::file_exact(path));
                user = user.merge(Toml::file_exact(path));
            } else {
                warnings.push(format!(
                    "configuration file {} not found; using defaults",
                    path.display()
                ));
            }
        }
        // Variables that are not configuration keys (say PORTAL_CONFIG) are reported too.
        let env = env.ignore(&["CONFIG"]);
        figment = figment.merge(env.clone());
        user = user.merge(env.clone());

        let known = known_keys();
        if let Ok(values) = user.data() {
            for dict in values.values() {
                let mut keys = Vec::new();
                collect_keys("", dict, &mut keys);
                for key in keys {
                    if !known.contains(&key) {
                        warnings.push(format!("unknown configuration key `{key}` is ignored"));
                    }
                }
            }
        }
        // Unknown keys were reported above; extract what is known, leniently.
        let sources = Sources {
            file: file.filter(|p| p.exists()).map(Path::to_path_buf),
            env,
        };
        let lenient = strip_unknown(figment, &known).map_err(|e| sources.explain(*e))?;
        let config: Config = lenient.extract().map_err(|e| sources.explain(e))?;
        config.validate().map_err(|e| sources.locate(e))?;
        let m = &config.mail;
        if !m.smtp_host.is_empty() && m.smtp_security == SmtpSecurity::Tls && m.smtp_port == 587 {
            warnings.push(
                "mail.smtp_security is \"tls\" but mail.smtp_port is 587 (usually STARTTLS); TLS from the first byte usually uses port 465".into(),
            );
        }
        if config.is_https() && !config.server.trust_proxy_headers {
            warnings.push(
                "server.public_url is https:// but server.trust_proxy_headers is false: behind a TLS proxy every client then shares the proxy's address for rate limits and the audit log; set trust_proxy_headers = true and list the proxy in server.trusted_proxies".into(),
            );
        }
        Ok(Loaded { config, warnings })
    }

    /// The rules a value's type cannot express, section by section.
    fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.validate_branding()?;
        self.mail.validate()?;
        self.accounts.validate()?;
        self.documents.validate()?;
        self.security.validate()?;
        self.plugins.validate()?;
        self.tasks.validate()?;
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return invalid(
                "log.level",
                "expected error, warn, info, debug or a filter such as portal=debug",
            );
        }
        Ok(())
    }

    fn validate_branding(&self) -> Result<(), ConfigError> {
        if !self.branding.logo.is_empty() && !Path::new(&self.branding.logo).is_file() {
            return invalid("branding.logo", "the file does not exist");
        }
        if !self.theme.dir.is_empty() && !Path::new(&self.theme.dir).is_dir() {
            return invalid("theme.dir", "the directory does not exist");
        }
        Ok(())
    }

    pub fn is_https(&self) -> bool {
        self.server.public_url.scheme() == "https"
    }

    /// The public URL without a trailing slash, for building links.
    pub fn base_url(&self) -> &str {
        self.server.public_url.as_str().trim_end_matches('/')
    }

    /// Where plugins are loaded from (`plugins.dir`, or `<data_dir>/plugins`).
    pub fn plugins_dir(&self) -> PathBuf {
        if self.plugins.dir.is_empty() {
            self.storage.data_dir.join("plugins")
        } else {
            PathBuf::from(&self.plugins.dir)
        }
    }

    pub fn outbox_dir(&self) -> PathBuf {
        if self.mail.outbox_dir.is_empty() {
            self.storage.data_dir.join("outbox")
        } else {
            PathBuf::from(&self.mail.outbox_dir)
        }
    }
}

/// Text keys accept numbers and booleans too: an environment variable such as
/// `PORTAL_FIRM__PHONE=5550100` arrives as a number, and is meant as text.
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct Text;
    impl serde::de::Visitor<'_> for Text {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("text")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(Text)
}

fn invalid(key: &str, message: &str) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid {
        key: key.into(),
        origin: String::new(),
        message: message.into(),
    })
}

/// Refuses the first of `values` (key, value, range) outside its range.
fn within(values: &[(&str, u64, std::ops::RangeInclusive<u64>)]) -> Result<(), ConfigError> {
    match values
        .iter()
        .find(|(_, value, range)| !range.contains(value))
    {
        Some((key, _, range)) => invalid(
            key,
            &format!("must be between {} and {}", range.start(), range.end()),
        ),
        None => Ok(()),
    }
}

fn known_keys() -> BTreeSet<String> {
    let defaults = Figment::from(Serialized::defaults(Config::default()));
    let mut keys = Vec::new();
    if let Ok(data) = defaults.data() {
        for dict in data.values() {
            collect_keys("", dict, &mut keys);
        }
    }
    keys.into_iter().collect()
}

fn collect_keys(prefix: &str, dict: &Dict, out: &mut Vec<String>) {
    for (key, value) in dict {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Dict(_, inner) => collect_keys(&path, inner, out),
            _ => out.push(path),
        }
    }
}

fn strip_unknown(
    figment: Figment,
    known: &BTreeSet<String>,
) -> Result<Figment, Box<figment::Error>> {
    let data = figment.data().map_err(Box::new)?;
    let mut merged = Dict::new();
    for dict in data.into_values() {
        merged = dict;
    }
    let cleaned = retain_known("", merged, known);
    Ok(Figment::from(Serialized::defaults(cleaned)))
}

fn retain_known(prefix: &str, dict: Dict, known: &BTreeSet<String>) -> Dict {
    let mut out = Dict::new();
    for (key, value) in dict {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let is_section = known.iter().any(|k| k.starts_with(&format!("{path}.")));
        match value {
            Value::Dict(tag, inner) if is_section => {
                out.insert(key, Value::Dict(tag, retain_known(&path, inner, known)));
            }
            // A table where a value belongs, or a value where a section belongs, is
            // kept so that extracting it fails with a message naming the key.
            other => {
                if is_section || known.contains(&path) {
                    out.insert(key, other);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
