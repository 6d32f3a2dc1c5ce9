//! Pages of S1–S6. Handlers parse the form, call the service, and render or redirect.

mod security;
mod signin;
mod signup;
mod steps;

pub use steps::{form_status, public_form};

use minijinja::{Value, context};
use poem::http::StatusCode;
use poem::web::Redirect;
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response, Route, get, post};

use super::AccountError;
use super::repo::Client;
use super::session::{self, Subject};
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::infra::web::page;

pub fn add(route: Route) -> Route {
    // Merge Emails, Update PIN and Update Email ID: /security/{merge,pin,email},
    // each with /verify and /resend (see `security::Change`).
    let route = security::add_changes(route);
    // The code page of each flow (/signin/code, /signin/reset, /signup/verify)
    // and its resend button (see the `Steps` of each).
    let route = steps::add_code_page(route, signin::SIGNIN, signin::code);
    let route = steps::add_code_page(route, signin::RESET, steps::verify_before_pin);
    let route = steps::add_code_page(route, signup::SIGNUP, steps::verify_before_pin);
    // Where those flows end: /signin/reset/pin and /signup/pin.
    let route = steps::add_pin_page(route, signin::NEW_PIN);
    let route = steps::add_pin_page(route, signup::CREATE_PIN);
    route
        .at("/signin", get(signin::form).post(signin::start))
        .at("/signin/pin", get(signin::pin_form).post(signin::pin))
        .at("/signin/forgot", post(signin::forgot))
        .at("/signout", post(signin::signout))
        .at("/signup", get(signup::form).post(signup::start))
        .at("/security", get(security::page))
        .at(
            "/security/devices/:id/revoke",
            post(security::revoke_device),
        )
        .at(
            "/security/sessions/end-others",
            post(security::end_other_sessions),
        )
}

/// A signed-in client, from the session cookie. Without one the visitor is sent to
/// sign in and brought back afterwards.
pub struct ClientSession {
    pub client: Client,
    pub token: String,
}

impl<'a> FromRequest<'a> for ClientSession {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = req
            .data::<AppState>()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("no state")))?;
        let token = page::cookie(req, &state.web.cookies.session);
        let sign_in = || {
            let next = match req.uri().query() {
                Some(q) if req.method() == poem::http::Method::GET => {
                    format!("{}?{q}", req.uri().path())
                }
                _ if req.method() == poem::http::Method::GET => req.uri().path().to_string(),
                _ => "/".to_string(),
            };
            AppError::SignInRequired { next, staff: false }
        };
        let Some(token) = token else {
            return Err(sign_in().into());
        };
        let Some((Subject::Client(id), _)) = session::resolve(state, Some(&token)).await? else {
            return Err(sign_in().into());
        };
        let Some(client) = session::client(state, id).await? else {
            return Err(sign_in().into());
        };
        Ok(ClientSession { client, token })
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

pub fn public_page(
    req: &Request,
    state: &AppState,
    template: &str,
    status: StatusCode,
    ctx: Value,
) -> AppResult<Response> {
    Ok(page::render(req, &state.renderer, template, status, ctx)?)
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
    let days = i64::from(state.config.accounts.trusted_device_days);
    req.cookie()
        .add(c.make(&c.device, token, Some(days * 24 * 3600)));
}

/// How a code page looks and where its forms go.
#[derive(Clone)]
pub struct CodePage {
    pub title: &'static str,
    pub intro: &'static str,
    pub action: &'static str,
    pub resend: &'static str,
    pub button: &'static str,
    pub cancel: &'static str,
    pub help: &'static str,
}

impl CodePage {
    pub fn render(
        &self,
        req: &Request,
        state: &AppState,
        who: Option<&ClientSession>,
        email: &str,
        error: Option<String>,
        notice_key: Option<&str>,
    ) -> AppResult<Response> {
        let status = steps::form_status(error.as_ref());
        let ctx = context! {
            title => self.title, intro => self.intro, action => self.action, resend => self.resend,
            button => self.button, cancel => self.cancel, help => self.help, email,
            minutes => state.config.accounts.code_ttl_minutes, error, notice => notice(notice_key),
        };
        match who {
            Some(who) => {
                let mut resp = client_page(req, state, who, "code.html", ctx)?;
                resp.set_status(status);
                Ok(resp)
            }
            None => public_page(req, state, "code.html", status, ctx),
        }
    }
}

/// Splits a service result: user mistakes become a message for the page, anything
/// else propagates as an error.
pub fn user_error<T>(result: Result<T, AccountError>) -> AppResult<Result<T, String>> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(AccountError::Internal(e)) => Err(e),
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// The text to show for a user's mistake; anything else propagates as an error.
pub fn message(e: AccountError) -> AppResult<String> {
    match e {
        AccountError::Internal(e) => Err(e),
        e => Ok(e.to_string()),
    }
}

#[derive(serde::Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    pub code: String,
}

#[derive(serde::Deserialize)]
pub struct Empty {}
