//! `portal theme check`: renders every page and email of the theme with sample data,
//! undefined variables counting as errors, and reports problems per file. The firm
//! admin's tool before deploying a theme.
//!
//! The samples (in `samples.rs`) are built from the view structs and context keys the
//! handlers use, so when a handler's context changes, its sample must change with it
//! (a unit test fails for any embedded template without a sample).

use std::collections::BTreeMap;

use minijinja::value::Value;

use crate::config::Config;
use crate::infra::render::{Problem, Renderer, split_subject};

mod samples;
pub use samples::{emails, pages};

/// Templates that are only ever extended, never rendered on their own.
pub const LAYOUTS: [&str; 4] = [
    "base.html",
    "card.html",
    "email/base.html",
    "task_fields.html",
];

/// One rendering of a template with sample data.
pub struct Sample {
    pub template: &'static str,
    /// What the sample stands for, e.g. "with an error".
    pub label: &'static str,
    pub context: Value,
}

/// The outcome of a check.
pub struct Report {
    pub problems: Vec<Problem>,
    pub templates: usize,
    pub renderings: usize,
}

/// Checks the theme of `config` (its `theme.dir` over the embedded default).
pub fn check(config: &Config) -> Report {
    let renderer = Renderer::unchecked(&sample_config(config), true);
    let mut found = Found::default();
    for problem in renderer.parse_all() {
        found.add(problem, None);
    }
    let pages = pages();
    for sample in &pages {
        if let Err(e) = renderer.render(sample.template, sample.context.clone()) {
            found.add(renderer.locate(&e, sample.template), Some(sample));
        }
    }
    let emails = emails();
    for sample in &emails {
        check_email(&renderer, sample, &mut found);
    }
    Report {
        problems: found.into_problems(),
        templates: renderer.template_names().len(),
        renderings: pages.len() + emails.len() * 2,
    }
}

/// Problems keyed by place, each reported once with the first sample that showed it.
#[derive(Default)]
struct Found(BTreeMap<Problem, Option<String>>);

impl Found {
    fn add(&mut self, problem: Problem, sample: Option<&Sample>) {
        let seen = sample.map(|s| match s.label {
            "" => s.template.to_string(),
            label => format!("{}, {label}", s.template),
        });
        self.0.entry(problem).or_insert(seen);
    }

    fn into_problems(self) -> Vec<Problem> {
        self.0
            .into_iter()
            .map(|(mut p, seen)| {
                if let Some(seen) = seen {
                    p.message = format!("{} (rendering {seen})", p.message);
                }
                p
            })
            .collect()
    }
}

/// `sample.template` names the email (`email/<name>`); renders its `.txt` (which
/// must start with `Subject:`) and `.html`.
fn check_email(renderer: &Renderer, sample: &Sample, found: &mut Found) {
    for ext in ["txt", "html"] {
        let template = format!("{}.{ext}", sample.template);
        match renderer.render(&template, sample.context.clone()) {
            Err(e) => found.add(renderer.locate(&e, &template), Some(sample)),
            Ok(text) if ext == "txt" && split_subject(&text).is_none() => {
                let problem = Problem {
                    file: renderer.file_of(&template),
                    line: Some(1),
                    message: "the first line must be `Subject: ...` with a subject".into(),
                };
                found.add(problem, Some(sample));
            }
            Ok(_) => {}
        }
    }
}

/// The firm's config with every optional firm detail and a logo filled in, so that
/// the `{% if firm.phone %}`-style branches are rendered too.
fn sample_config(config: &Config) -> Config {
    let mut c = config.clone();
    let firm = &mut c.firm;
    for (field, sample) in [
        (&mut firm.email, "office@smithlee.example"),
        (&mut firm.phone, "555-0100"),
        (&mut firm.address, "12 Main Street, Springfield"),
        (&mut firm.website, "https://smithlee.example"),
        (&mut firm.hours, "Mon-Fri 9-5"),
    ] {
        if field.is_empty() {
            *field = sample.into();
        }
    }
    if c.branding.logo.is_empty() {
        c.branding.logo = "logo.svg".into();
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_theme_passes() {
        let report = check(&Config::default());
        let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn every_embedded_template_has_a_sample() {
        let renderer = Renderer::unchecked(&Config::default(), true);
        let mut sampled: Vec<String> = pages().iter().map(|s| s.template.to_string()).collect();
        for s in emails() {
            sampled.push(format!("{}.txt", s.template));
            sampled.push(format!("{}.html", s.template));
        }
        for name in renderer.template_names() {
            assert!(
                sampled.contains(&name) || LAYOUTS.contains(&name.as_str()),
                "{name} has no sample in theme_check.rs"
            );
        }
    }
}
