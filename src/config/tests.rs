//! Tests of loading, validating and explaining the configuration.

mod loading {
    use super::super::*;
    use std::io::Write;

    fn load_toml(text: &str) -> Result<Loaded, ConfigError> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        Config::load_from(Some(file.path()), Env::prefixed("PORTAL_TEST_NOTHING_"))
    }

    #[test]
    fn proxies_are_checked_and_an_https_portal_without_them_is_warned_about() {
        let loaded = load_toml("[server]\npublic_url = \"https://portal.example.com\"\n").unwrap();
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.contains("trust_proxy_headers")),
            "{:?}",
            loaded.warnings
        );
        let loaded = load_toml(
            "[server]\npublic_url = \"https://p.example.com\"\ntrust_proxy_headers = true\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n",
        )
        .unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let err = load_toml("[server]\ntrusted_proxies = [\"10.0.0.0/33\"]\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("server.trusted_proxies") && err.contains("10.0.0.0/33"),
            "{err}"
        );
    }

    #[test]
    fn defaults_load_without_a_file() {
        let loaded = Config::load_from(None, Env::prefixed("PORTAL_TEST_NOTHING_")).unwrap();
        assert_eq!(loaded.config.server.listen.to_string(), "127.0.0.1:8080");
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn file_values_override_defaults() {
        let loaded =
            load_toml("[firm]\nname = \"Smith CPA\"\n[accounts]\nsignup = \"open\"\n").unwrap();
        assert_eq!(loaded.config.firm.name, "Smith CPA");
        assert_eq!(loaded.config.accounts.signup, Signup::Open);
    }

    #[test]
    fn the_sample_portal_toml_is_complete_and_matches_the_defaults() {
        let loaded = load_toml(include_str!("../../portal.toml")).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let sample = serde_json::to_value(&loaded.config).unwrap();
        let defaults = serde_json::to_value(Config::default()).unwrap();
        assert_eq!(
            sample, defaults,
            "portal.toml must document every key at its default"
        );
        let text = include_str!("../../portal.toml");
        for key in known_keys() {
            let leaf = key.rsplit('.').next().unwrap();
            assert!(
                text.contains(&format!("\n{leaf} =")),
                "portal.toml does not document {key}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_warned_about_not_fatal() {
        let loaded = load_toml("[firm]\nnmae = \"typo\"\n[nonsense]\nx = 1\n").unwrap();
        assert!(
            loaded.warnings.iter().any(|w| w.contains("firm.nmae")),
            "{:?}",
            loaded.warnings
        );
        assert!(
            loaded.warnings.iter().any(|w| w.contains("nonsense.x")),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn invalid_values_name_the_key() {
        for (text, key) in [
            (
                "[branding]\nprimary_color = \"red; }\"\n",
                "branding.primary_color",
            ),
            ("[server]\nlisten = \"nowhere\"\n", "server.listen"),
            ("[accounts]\nsignup = \"maybe\"\n", "signup"),
            (
                "[documents]\nuploads_per_hour = 0\n",
                "documents.uploads_per_hour",
            ),
            (
                "[mail]\nstaff_notify_batch_minutes = 0\n",
                "mail.staff_notify_batch_minutes",
            ),
        ] {
            let err = load_toml(text).err().unwrap();
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn zero_is_refused_when_read_for_every_key_that_needs_at_least_one() {
        for key in [
            "server.max_connections",
            "server.header_timeout_seconds",
            "server.body_timeout_seconds",
            "server.send_timeout_seconds",
            "mail.max_attempts",
            "accounts.session_idle_minutes",
            "accounts.session_max_hours",
            "accounts.trusted_device_days",
            "accounts.code_max_attempts",
            "accounts.codes_per_email_per_hour",
            "accounts.codes_per_ip_per_hour",
            "accounts.lockout_after",
            "accounts.codes_per_account_per_hour",
            "accounts.staff_totp_max_failures",
            "documents.max_file_mb",
            "documents.max_files_per_upload",
            "documents.client_quota_mb",
            "retention.run_every_minutes",
        ] {
            let (section, leaf) = key.split_once('.').unwrap();
            let err = load_toml(&format!("[{section}]\n{leaf} = 0\n"))
                .err()
                .unwrap_or_else(|| panic!("{key} = 0 was accepted"))
                .to_string();
            assert!(
                err.contains(&format!("`{key}`"))
                    && err.contains("expected a whole number (1 or more), found 0"),
                "{err}"
            );
            assert!(
                load_toml(&format!("[{section}]\n{leaf} = 1\n")).is_ok(),
                "{key} = 1"
            );
        }
    }

    #[test]
    fn text_extraction_limits_are_checked() {
        for (text, key) in [
            ("extract_memory_mb = 16", "documents.extract_memory_mb"),
            ("extract_memory_mb = 1000000", "documents.extract_memory_mb"),
            ("extract_seconds = 0", "documents.extract_seconds"),
            (
                "extract_program = \"/nonexistent/portal\"",
                "documents.extract_program",
            ),
        ] {
            let err = load_toml(&format!("[documents]\n{text}\n")).err().unwrap();
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
    }
}

mod plain_error_tests {
    use super::super::*;
    use std::io::Write;

    fn error_for(text: &str) -> String {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        let err = Config::load_from(Some(file.path()), Env::prefixed("PORTAL_PLAIN_NOTHING_"))
            .err()
            .unwrap_or_else(|| panic!("{text:?} was accepted"));
        let message = err.to_string();
        for internal in [
            "default.", "BTreeMap", "src/", "figment", "u32", "u16", "struct ",
        ] {
            assert!(!message.contains(internal), "{internal:?} in {message}");
        }
        assert!(
            message.contains(&file.path().display().to_string()),
            "the file is named: {message}"
        );
        message
    }

    /// A bad value, the key its message names and what else the message says.
    const CASES: &[(&str, &str, &str)] = &[
        (
            "[retention]\nremove_saved_uploads_after_days = -1\n",
            "`retention.remove_saved_uploads_after_days`",
            "found -1",
        ),
        (
            "[retention]\nunpublish_after_days = 0.5\n",
            "`retention.unpublish_after_days`",
            "found 0.5",
        ),
        (
            "[mail]\nsmtp_port = 70000\n",
            "`mail.smtp_port`",
            "from 0 to 65535",
        ),
        (
            "[branding]\nprimary_color = \"blue\"\n",
            "`branding.primary_color`",
            "expected a colour such as #1d4f73",
        ),
        (
            "[server]\nlisten = \"localhost\"\n",
            "`server.listen`",
            "expected an address and port such as 127.0.0.1:8080",
        ),
        (
            "[mail]\nsmtp_security = \"ssl\"\n",
            "`mail.smtp_security`",
            "\"starttls\", \"tls\", \"none\"",
        ),
        (
            "[documents]\nindex_text = \"yes\"\n",
            "`documents.index_text`",
            "true or false",
        ),
        (
            "[mail]\nstaff_notify = \"a@b.example\"\n",
            "`mail.staff_notify`",
            "a list",
        ),
        (
            "[mail]\nretry_delays_seconds = [60, -5]\n",
            "`mail.retry_delays_seconds`",
            "found -5",
        ),
        (
            "[mail]\nretry_delays_seconds = []\n",
            "`mail.retry_delays_seconds`",
            "between 1 and 86400",
        ),
        (
            "[mail]\ntimeout_seconds = 0\n",
            "`mail.timeout_seconds`",
            "between 1 and 300",
        ),
        (
            "[mail]\ntimeout_seconds = 20\nsend_timeout_seconds = 10\n",
            "`mail.send_timeout_seconds`",
            "at least",
        ),
        (
            "[accounts]\nlockout_after = 0\n",
            "`accounts.lockout_after`",
            "expected a whole number (1 or more), found 0",
        ),
        (
            "[documents]\nmax_file_mb = -2\n",
            "`documents.max_file_mb`",
            "expected a whole number (1 or more), found -2",
        ),
        ("accounts = 5\n", "`accounts`", "a section"),
        (
            "[retention.run_every_minutes]\nx = 1\n",
            "`retention.run_every_minutes`",
            "found a section",
        ),
        (
            "[server]\nlisten = \"nowhere\"\n",
            "`server.listen`",
            "address and port",
        ),
    ];

    #[test]
    fn every_invalid_value_gets_a_plain_message_naming_the_key() {
        for &(text, key, expected) in CASES {
            let message = error_for(text);
            assert!(message.contains(key), "{key} not in {message}");
            assert!(message.contains(expected), "{expected:?} not in {message}");
        }
        let broken = error_for("[accounts\n");
        assert!(broken.contains("line 1"), "{broken}");
    }

    #[test]
    #[allow(unsafe_code)] // setting environment variables is unsafe since edition 2024
    fn an_invalid_environment_variable_is_named() {
        // SAFETY: the variable is unique to this test; nothing else reads it.
        unsafe { std::env::set_var("PORTAL_PLAINENV_RETENTION__UNPUBLISH_AFTER_DAYS", "-3") };
        let err = Config::load_from(None, Env::prefixed("PORTAL_PLAINENV_").split("__"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("`retention.unpublish_after_days`") && err.contains("found -3"),
            "{err}"
        );
        assert!(err.contains("RETENTION__UNPUBLISH_AFTER_DAYS"), "{err}");
    }
}

mod env_tests {
    use super::super::*;

    #[test]
    #[allow(unsafe_code)] // setting environment variables is unsafe since edition 2024
    fn environment_overrides_and_digit_strings_stay_text() {
        // SAFETY: the variables are unique to this test; nothing else reads them.
        unsafe {
            std::env::set_var("PORTAL_ENVTEST_FIRM__PHONE", "5550100");
            std::env::set_var("PORTAL_ENVTEST_MAIL__SMTP_PASSWORD", "12345678");
            std::env::set_var("PORTAL_ENVTEST_SERVER__LISTEN", "0.0.0.0:9000");
            std::env::set_var("PORTAL_ENVTEST_NOT__A_KEY", "x");
        }
        let loaded = Config::load_from(None, Env::prefixed("PORTAL_ENVTEST_").split("__")).unwrap();
        assert_eq!(loaded.config.firm.phone, "5550100");
        assert_eq!(loaded.config.mail.smtp_password.expose(), "12345678");
        assert_eq!(loaded.config.server.listen.to_string(), "0.0.0.0:9000");
        assert!(
            loaded.warnings.iter().any(|w| w.contains("not.a_key")),
            "{:?}",
            loaded.warnings
        );
    }
}

mod plugin_config_tests {
    use super::super::*;

    fn load(text: &str) -> Result<Loaded, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portal.toml");
        std::fs::write(&path, text).unwrap();
        Config::load_from(Some(&path), Env::prefixed("PORTAL_PLUGIN_TEST_NOTHING_"))
    }

    #[test]
    fn plugin_limits_are_checked_and_name_their_key() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let not_a_dir = format!("dir = {:?}", file.path().display().to_string());
        for (text, key) in [
            ("memory_mb = 0", "plugins.memory_mb"),
            ("memory_mb = 100000", "plugins.memory_mb"),
            ("call_ms = 1", "plugins.call_ms"),
            ("call_ms = 3600000", "plugins.call_ms"),
            ("max_log_lines = 0", "plugins.max_log_lines"),
            (not_a_dir.as_str(), "plugins.dir"),
        ] {
            let err = load(&format!("[plugins]\n{text}\n")).err().unwrap();
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn the_plugins_directory_defaults_to_the_data_directory() {
        let config = load("[storage]\ndata_dir = \"/srv/portal\"\n")
            .unwrap()
            .config;
        assert_eq!(config.plugins_dir(), PathBuf::from("/srv/portal/plugins"));
        let config = load("[plugins]\ndir = \"/opt/plugins\"\nmemory_mb = 32\n")
            .unwrap()
            .config;
        assert_eq!(config.plugins_dir(), PathBuf::from("/opt/plugins"));
        assert_eq!(config.plugins.memory_mb, 32);
    }
}
