//! Rendering the portal's pages, redirects, the flow and session cookies, and the
//! fixed notices a redirect may ask a page to show.

use minijinja::{Value, context};
use poem::http::StatusCode;
use poem::web::Redirect;
use poem::{IntoResponse, Request, Response};

use super::{ClientSession, StaffSession};
use crate::error::AppResult;
use crate::infra::web::page;
use crate::state::AppState;

/// 422 when the form has errors to show, else 200.
pub fn form_status<E>(error: &Option<E>) -> StatusCode {
    if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    }
}

/// The fixed messages a redirect can ask a page to show (never text from the URL).
pub fn notice(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "account-created" => "Your account is ready. Sign in with your email and PIN.",
        "signed-out" => "You have signed out.",
        "expired" => "That step expired. Please start again.",
        "code-sent" => "We sent a new access code. Use the code from the latest email.",
        "pin-reset" => "Your new PIN is set. Sign in with it now.",
        "pin-changed" => {
            "Your PIN was changed. Other sessions and trusted devices were signed out."
        }
        "email-merged" => "The address was added to your portal.",
        "email-changed" => "Your sign-in email was changed.",
        "device-revoked" => "The device was removed. It will need your PIN next time.",
        "sessions-ended" => "Your other sessions were signed out.",
        "request-sent" => "Thank you. The firm will be in touch by email.",
        "file-deleted" => "The file was deleted.",
        "file-renamed" => "The file was renamed.",
        _ => return None,
    })
}

#[derive(serde::Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
    pub email: Option<String>,
    pub next: Option<String>,
}

/// A form with no fields but the CSRF token.
#[derive(serde::Deserialize)]
pub struct Empty {}

/// Renders a client page with the signed-in user in the context.
pub fn client_page(
    req: &Request,
    state: &AppState,
    who: &ClientSession,
    template: &str,
    ctx: Value,
) -> AppResult<Response> {
    let user = context! {
        name => who.client.account_name.clone().unwrap_or_else(|| who.client.name.clone()),
        email => who.client.email.clone(),
    };
    Ok(page::render(
        req,
        &state.renderer,
        template,
        StatusCode::OK,
        context! { user, ..ctx },
    )?)
}

/// Renders a staff page with the staff member and the unread count in the context.
pub fn staff_page(
    req: &Request,
    state: &AppState,
    who: &StaffSession,
    template: &str,
    status: StatusCode,
    ctx: Value,
) -> AppResult<Response> {
    let staff = context! { name => who.staff.name.clone(), email => who.staff.email.clone(), unread => who.unread };
    Ok(page::render(
        req,
        &state.renderer,
        template,
        status,
        context! { staff, ..ctx },
    )?)
}

pub fn public_page(
    req: &Request,
    state: &AppState,
    template: &str,
    status: StatusCode,
    ctx: Value,
) -> AppResult<Response> {
    Ok(page::render(req, &state.renderer, template, status, ctx)?)
}

/// A public page with a form, and the error to show in it if any (422 then).
pub fn public_form(
    req: &Request,
    state: &AppState,
    template: &str,
    error: Option<String>,
    ctx: Value,
) -> AppResult<Response> {
    let status = form_status(&error);
    public_page(req, state, template, status, context! { error, ..ctx })
}

pub fn see_other(path: &str) -> Response {
    Redirect::see_other(path).into_response()
}

pub fn flow_token(req: &Request, state: &AppState) -> Option<String> {
    page::cookie(req, &state.web.cookies.flow)
}

pub fn set_flow(req: &Request, state: &AppState, token: &str) {
    let c = &state.web.cookies;
    req.cookie().add(c.make(&c.flow, token, None));
}

pub fn clear_flow(req: &Request, state: &AppState) {
    let c = &state.web.cookies;
    req.cookie().add(c.expire(&c.flow));
}

/// Sets the session cookie (a browser-session cookie: it ends with the browser).
pub fn set_session(req: &Request, state: &AppState, token: &str) {
    let c = &state.web.cookies;
    req.cookie().add(c.make(&c.session, token, None));
}

pub fn set_device(req: &Request, state: &AppState, token: &str) {
    let c = &state.web.cookies;
    let days = i64::from(state.config.accounts.trusted_device_days.get());
    req.cookie()
        .add(c.make(&c.device, token, Some(days * 24 * 3600)));
}
