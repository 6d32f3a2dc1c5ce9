//! Themes: minijinja templates and static assets. The default theme is embedded in
//! the binary; a firm's theme directory overrides any file, and an override can still
//! extend the embedded original under the `default/` prefix
//! (`{% extends "default/base.html" %}`).

use std::borrow::Cow;
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

impl Renderer {
    pub fn new(config: &Config) -> Self {
        let theme_dir = (!config.theme.dir.is_empty()).then(|| PathBuf::from(&config.theme.dir));
        let mut env = Environment::new();
        let loader_dir = theme_dir.clone();
        env.set_loader(move |name| load_template(loader_dir.as_deref(), name));
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        env.add_global("firm", Value::from(Serde(&config.firm)));
        env.add_global("has_logo", !config.branding.logo.is_empty());
        env.add_global("brand_color", config.branding.primary_color.clone());
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
        let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
        let subject = first
            .strip_prefix("Subject:")
            .map(str::trim)
            .ok_or_else(|| {
                minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("email/{name}.txt must start with `Subject:`"),
                )
            })?;
        Ok(RenderedEmail {
            subject: subject.to_string(),
            text: rest.trim_start().to_string(),
            html,
        })
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
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[month repr:short] [day padding:none], [year] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_default()
}

fn format_date(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[month repr:short] [day padding:none], [year]"
            ))
            .ok()
        })
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
        let r = Renderer::new(&config);
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
        let r = Renderer::new(&Config::default());
        let html = r
            .render(
                "notice.html",
                context! { title => "<script>x</script>", message => "a" },
            )
            .unwrap();
        assert!(!html.contains("<script>x"));
    }
}

#[cfg(test)]
mod base_tests {
    #[test]
    fn base_renders_for_a_signed_in_user() {
        let r = super::Renderer::new(&crate::config::Config::default());
        let ctx = minijinja::context! { user => minijinja::context! { name => "J", email => "j@x.y" }, path => "/", csrf => "t" };
        if let Err(e) = r.render("home.html", ctx) {
            panic!("{e:#}");
        }
    }
}
