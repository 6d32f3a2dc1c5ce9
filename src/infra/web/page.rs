//! Rendering a page for a request: the template's context gets the CSRF token and
//! the current path besides what the handler passes.

use minijinja::{Value, context};
use poem::http::StatusCode;
use poem::web::Html;
use poem::{IntoResponse, Request, Response};

use crate::infra::render::Renderer;

pub fn render(
    req: &Request,
    renderer: &Renderer,
    template: &str,
    status: StatusCode,
    ctx: Value,
) -> Result<Response, minijinja::Error> {
    let full = context! { csrf => super::csrf::token(req), path => req.uri().path(), ..ctx };
    let html = renderer.render(template, full)?;
    Ok((status, Html(html)).into_response())
}

/// The value of a cookie, if the browser sent it.
pub fn cookie(req: &Request, name: &str) -> Option<String> {
    req.cookie()
        .get(name)
        .map(|c| c.value_str().to_string())
        .filter(|v| !v.is_empty())
}
