//! Themes: minijinja templates and static assets. The default theme is embedded in
//! the binary; a firm's theme directory overrides any file, and an override can still
//! extend the embedded original under the `default/` prefix
//! (`{% extends "default/base.html" %}`).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use minijinja::value::{Serde, Value};
use minijinja::{Environment, ErrorKind};
use rust_embed::RustEmbed;

use crate::config::Config;

#[derive(RustEmbed)]
#[folder = "themes/default/"]
struct DefaultTheme;

pub struct Renderer {
    env: Environment<'static>,
    theme_dir: Option<PathBuf>,
}

/// An email ready for the queue.
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A problem in one template file, located for the person who edits it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// The file on disk, or `default theme: templates/<name>` for an embedded one.
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}, line {line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// The templates that failed to parse at start.
#[derive(Debug)]
pub struct ThemeError(pub Vec<Problem>);

impl std::fmt::Display for ThemeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "the theme has broken templates (theme.dir):")?;
        for p in &self.0 {
            writeln!(f, "  {p}")?;
        }
        write!(
            f,
            "Fix them, or run `portal theme check` for a full report."
        )
    }
}

impl std::error::Error for ThemeError {}

impl Renderer {
    /// The renderer, with every template (embedded and the firm's overrides) parsed.
    /// A broken override stops start-up: the admin who deployed it is watching then,
    /// whereas a quiet fallback to the default page would leave clients looking at a
    /// half-branded portal that nobody notices, as with an invalid config value.
    pub fn new(config: &Config) -> Result<Self, ThemeError> {
        let renderer = Self::unchecked(config, config.theme.strict_variables || cfg!(test));
        let problems = renderer.parse_all();
        if problems.is_empty() {
            Ok(renderer)
        } else {
            Err(ThemeError(problems))
        }
    }

    /// A renderer that parses templates only when first used; `strict` makes
    /// undefined variables errors.
    pub fn unchecked(config: &Config, strict: bool) -> Self {
        let theme_dir = (!config.theme.dir.is_empty()).then(|| PathBuf::from(&config.theme.dir));
        let mut env = Environment::new();
        let loader_dir = theme_dir.clone();
        env.set_loader(move |name| load_template(loader_dir.as_deref(), name));
        // SemiStrict, not Strict: printing, looping over or looking into an undefined
        // variable fails (a misspelt or missing variable), while `{% if notice %}` on
        // a variable a handler leaves out still reads as false, so optional notices
        // and errors need no `is defined` everywhere. Production stays Chainable so an
        // older theme keeps rendering.
        env.set_undefined_behavior(if strict {
            minijinja::UndefinedBehavior::SemiStrict
        } else {
            minijinja::UndefinedBehavior::Chainable
        });
        env.add_global("firm", Value::from(Serde(&config.firm)));
        env.add_global("has_logo", !config.branding.logo.is_empty());
        env.add_global("brand_color", config.branding.primary_color.to_string());
        env.add_global("base_url", config.base_url().to_string());
        env.add_filter("datetime", format_datetime);
        env.add_filter("date", format_date);
        env.add_filter("address", |a: String| {
            Value::from_safe_string(crate::infra::address::staff_html(&a))
        });
        Renderer { env, theme_dir }
    }

    pub fn render(&self, name: &str, ctx: Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }

    /// Renders `email/<name>.txt` (first line `Subject: ...`) and `email/<name>.html`.
    pub fn render_email(&self, name: &str, ctx: Value) -> Result<RenderedEmail, minijinja::Error> {
        let text = self.render(&format!("email/{name}.txt"), ctx.clone())?;
        let html = self.render(&format!("email/{name}.html"), ctx)?;
        let (subject, rest) = split_subject(&text).ok_or_else(|| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("email/{name}.txt must start with `Subject:` and a subject"),
            )
        })?;
        Ok(RenderedEmail {
            subject: subject.to_string(),
            text: rest.to_string(),
            html,
        })
    }

    /// Every template name: the embedded ones and any file under the theme's `templates/`.
    pub fn template_names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = DefaultTheme::iter()
            .filter_map(|f| f.strip_prefix("templates/").map(str::to_string))
            .collect();
        if let Some(dir) = &self.theme_dir {
            list_files(&dir.join("templates"), "", 0, &mut names);
        }
        names.into_iter().collect()
    }

    /// Parses every template, returning what failed.
    pub fn parse_all(&self) -> Vec<Problem> {
        self.template_names()
            .iter()
            .filter_map(|name| {
                let err = self.env.get_template(name).err()?;
                Some(self.locate(&err, name))
            })
            .collect()
    }

    /// The file and line an error comes from, as the theme's author knows them
    /// (`template` when the error does not name one).
    pub fn locate(&self, err: &minijinja::Error, template: &str) -> Problem {
        let message = match err.detail() {
            Some(detail) => format!("{}: {detail}", err.kind()),
            None => err.kind().to_string(),
        };
        Problem {
            file: self.file_of(err.name().unwrap_or(template)),
            line: err.line(),
            message,
        }
    }

    /// Where the template `name` is read from.
    pub fn file_of(&self, name: &str) -> String {
        let embedded = || {
            format!(
                "default theme: templates/{}",
                name.trim_start_matches("default/")
            )
        };
        if name.starts_with("default/") {
            return embedded();
        }
        match (&self.theme_dir, safe_relative(name)) {
            (Some(dir), Some(relative)) if dir.join("templates").join(&relative).is_file() => {
                dir.join("templates").join(relative).display().to_string()
            }
            _ => embedded(),
        }
    }

    /// A static asset from the theme directory, else from the embedded theme.
    pub fn asset(&self, path: &str) -> Option<Cow<'static, [u8]>> {
        let relative = safe_relative(path)?;
        if let Some(dir) = &self.theme_dir
            && let Ok(bytes) = std::fs::read(dir.join("static").join(&relative))
        {
            return Some(Cow::Owned(bytes));
        }
        DefaultTheme::get(&format!("static/{path}")).map(|f| f.data)
    }
}

/// The subject and body of a rendered text email, or `None` when its first line is
/// not `Subject: ...` with a subject.
pub fn split_subject(text: &str) -> Option<(&str, &str)> {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let subject = first.strip_prefix("Subject:")?.trim();
    (!subject.is_empty()).then_some((subject, rest.trim_start()))
}

/// Adds the templates under `dir` (names relative to the templates root,
/// `/`-separated): files ending in `.html` or `.txt` and not hidden, so that editor
/// backups, swap files and notes beside them are left alone.
fn list_files(dir: &Path, prefix: &str, depth: usize, names: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(file_name) = entry.file_name().into_string() else {
            continue;
        };
        if file_name.starts_with('.') {
            continue;
        }
        let name = format!("{prefix}{file_name}");
        if entry.path().is_dir() {
            // Bounded, in case a symbolic link loops back.
            if depth < 8 {
                list_files(&entry.path(), &format!("{name}/"), depth + 1, names);
            }
        } else if Path::new(&file_name)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("txt"))
        {
            names.insert(name);
        }
    }
}

fn load_template(theme_dir: Option<&Path>, name: &str) -> Result<Option<String>, minijinja::Error> {
    let embedded = |n: &str| {
        DefaultTheme::get(&format!("templates/{n}"))
            .map(|f| String::from_utf8_lossy(&f.data).into_owned())
    };
    if let Some(original) = name.strip_prefix("default/") {
        return Ok(embedded(original));
    }
    if let (Some(dir), Some(relative)) = (theme_dir, safe_relative(name)) {
        let path = dir.join("templates").join(relative);
        match std::fs::read_to_string(&path) {
            Ok(source) => return Ok(Some(source)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("{}: {e}", path.display()),
                ));
            }
        }
    }
    Ok(embedded(name))
}

/// A path made only of normal components (no `..`, no root), or `None`.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    if path.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(p.to_path_buf())
}

fn format_datetime(ts: i64) -> String {
    format_unix(
        ts,
        time::macros::format_description!(
            "[month repr:short] [day padding:none], [year] [hour]:[minute] UTC"
        ),
    )
}

fn format_date(ts: i64) -> String {
    format_unix(
        ts,
        time::macros::format_description!("[month repr:short] [day padding:none], [year]"),
    )
}

/// The Unix time `ts` written as `format` says; empty for a time out of range.
fn format_unix(ts: i64, format: &[time::format_description::BorrowedFormatItem<'_>]) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn theme_directory_overrides_and_can_extend_the_original() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("templates")).unwrap();
        std::fs::create_dir_all(dir.path().join("static/css")).unwrap();
        std::fs::write(
            dir.path().join("templates/help.html"),
            "{% extends \"default/help.html\" %}{% block title %}Firm help{% endblock %}",
        )
        .unwrap();
        std::fs::write(dir.path().join("static/css/portal.css"), "body{}").unwrap();
        let mut config = Config::default();
        config.theme.dir = dir.path().to_string_lossy().into_owned();
        let r = Renderer::new(&config).unwrap();
        let html = r.render("help.html", context! {}).unwrap();
        assert!(html.contains("<title>Firm help"), "{html}");
        assert_eq!(&*r.asset("css/portal.css").unwrap(), b"body{}");
        assert!(
            r.asset("img/favicon.svg").is_some(),
            "falls back to the embedded theme"
        );
        assert!(r.asset("../portal.toml").is_none());
    }

    #[test]
    fn user_text_is_escaped() {
        let r = Renderer::new(&Config::default()).unwrap();
        let html = r
            .render(
                "notice.html",
                context! { title => "<script>x</script>", message => "a" },
            )
            .unwrap();
        assert!(!html.contains("<script>x"));
    }

    /// A config whose theme directory holds `files` (path under `templates/`, source).
    fn theme(files: &[(&str, &str)]) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        for (name, source) in files {
            let path = dir.path().join("templates").join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, source).unwrap();
        }
        let mut config = Config::default();
        config.theme.dir = dir.path().to_string_lossy().into_owned();
        (dir, config)
    }

    #[test]
    fn strict_variables_fail_on_undefined_but_let_if_test_them() {
        let (_dir, config) = theme(&[
            ("optional.html", "{% if notice %}{{ notice }}{% endif %}ok"),
            ("missing.html", "Hello {{ nmae }}"),
            ("attribute.html", "Hello {{ user.nmae }}"),
            ("loop.html", "{% for d in documnets %}{{ d }}{% endfor %}"),
        ]);
        let user = context! { user => context! { name => "Jane" } };
        let strict = Renderer::unchecked(&config, true);
        assert_eq!(strict.render("optional.html", context! {}).unwrap(), "ok");
        for name in ["missing.html", "attribute.html", "loop.html"] {
            let err = strict.render(name, user.clone()).unwrap_err();
            let problem = strict.locate(&err, name);
            assert!(problem.file.ends_with(name), "{problem}");
            assert_eq!(problem.line, Some(1), "{problem}");
        }
        // Production renders what is missing as empty.
        let lenient = Renderer::unchecked(&config, false);
        assert_eq!(
            lenient.render("missing.html", user.clone()).unwrap(),
            "Hello "
        );
        assert_eq!(lenient.render("attribute.html", user).unwrap(), "Hello ");
    }

    #[test]
    fn a_broken_override_is_refused_at_start_naming_each_file_and_line() {
        let (dir, config) = theme(&[
            (
                "signin.html",
                "{% extends \"default/signin.html\" %}\n{% block content %}{{ x }\n",
            ),
            (
                "staff/partials/row.html",
                "<li>\n\n{% for r in rows %}<b>{{ r }}</b>\n</li>",
            ),
            // Not templates: left alone even when they look broken.
            ("notes.md", "{% nonsense"),
            (".signin.html.swp", "{% nonsense"),
            ("signin.html~", "{% nonsense"),
        ]);
        let err = Renderer::new(&config)
            .err()
            .expect("a broken theme is refused");
        let files: Vec<_> = err.0.iter().map(|p| (p.file.clone(), p.line)).collect();
        let file = |name: &str| {
            dir.path()
                .join("templates")
                .join(name)
                .display()
                .to_string()
        };
        // The unclosed loop is reported where it opens.
        let expected = [
            (file("signin.html"), Some(2)),
            (file("staff/partials/row.html"), Some(3)),
        ];
        assert_eq!(files, expected, "{err}");
        assert!(err.to_string().contains("portal theme check"), "{err}");
    }

    #[test]
    fn every_embedded_template_parses() {
        let r = Renderer::unchecked(&Config::default(), true);
        assert!(r.template_names().len() > 30);
        assert_eq!(r.parse_all(), []);
    }
}

#[cfg(test)]
mod base_tests {
    #[test]
    fn base_renders_for_a_signed_in_user() {
        let r = super::Renderer::new(&crate::config::Config::default()).unwrap();
        let ctx = minijinja::context! { user => minijinja::context! { name => "J", email => "j@x.y" }, path => "/", csrf => "t" };
        if let Err(e) = r.render("home.html", ctx) {
            panic!("{e:#}");
        }
    }
}
