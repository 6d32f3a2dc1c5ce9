//! S3 sign-in, S3a forgotten PIN and S4 sign-out pages.

use minijinja::context;
use poem::web::Query;
use poem::{Response, handler};

use super::steps::{OnPage, PinPage, Steps};
use super::{
    CodeForm, CodePage, Empty, NoticeQuery, clear_flow, notice, public_form, see_other, set_device,
    set_flow, set_session, user_error,
};
use crate::accounts::codes::Purpose;
use crate::accounts::session::{self, Subject};
use crate::accounts::signin::{self as service, NextStep};
use crate::error::AppResult;
use crate::infra::web::csrf::{self, CsrfForm};
use crate::infra::web::local_path;
use crate::infra::web::page::cookie;

pub const SIGNIN: Steps = Steps {
    purpose: Purpose::Signin,
    code: CodePage {
        title: "Enter your access code",
        intro: "We sent a 6-digit access code to",
        action: "/signin/code",
        resend: "/signin/resend",
        button: "Confirm",
        cancel: "/signin",
        help: "signing-in",
    },
    pin_path: "/signin/pin",
};

pub const RESET: Steps = Steps {
    purpose: Purpose::Reset,
    code: CodePage {
        title: "Reset your PIN",
        intro: "If this address has a portal, we sent a 6-digit access code to",
        action: "/signin/reset",
        resend: "/signin/reset/resend",
        button: "Confirm",
        cancel: "/signin",
        help: "forgot-pin",
    },
    pin_path: "/signin/reset/pin",
};

pub const NEW_PIN: PinPage = PinPage {
    steps: RESET,
    title: "Set a new PIN",
    button: "Save PIN",
    help: "forgot-pin",
    create: false,
    follow: false,
    done: "pin-reset",
};

/// Fields not sent are empty.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
pub struct EmailForm {
    email: String,
    next: String,
}

#[derive(serde::Deserialize)]
pub struct PinForm {
    #[serde(default)]
    pin: String,
}

fn signin_page(
    on: &OnPage,
    email: &str,
    next: &str,
    error: Option<String>,
    notice_key: Option<&str>,
) -> AppResult<Response> {
    let ctx = context! { email, next, notice => notice(notice_key) };
    public_form(on.req, on.state, "signin.html", error, ctx)
}

#[handler]
pub async fn form(on: OnPage<'_>, Query(q): Query<NoticeQuery>) -> AppResult<Response> {
    let (email, next) = (
        q.email.as_deref().unwrap_or(""),
        local_path(q.next.as_deref()),
    );
    signin_page(&on, email, &next, None, q.notice.as_deref())
}

#[handler]
pub async fn start(on: OnPage<'_>, CsrfForm(f): CsrfForm<EmailForm>) -> AppResult<Response> {
    let (next, device) = (local_path(Some(&f.next)), on.device());
    let started = service::signin_start(on.state, &f.email, &next, device.as_deref(), &on.visitor);
    match user_error(started.await)? {
        Ok((started, step)) => {
            set_flow(on.req, on.state, &started.token);
            Ok(see_other(match step {
                NextStep::Pin => "/signin/pin",
                NextStep::Code => "/signin/code",
            }))
        }
        Err(message) => signin_page(&on, &f.email, &next, Some(message), None),
    }
}

fn pin_page(on: &OnPage, email: &str, error: Option<String>) -> AppResult<Response> {
    public_form(on.req, on.state, "pin.html", error, context! { email })
}

#[handler]
pub async fn pin_form(on: OnPage<'_>) -> AppResult<Response> {
    match SIGNIN.at(on.req, on.state, "pin", true).await? {
        Ok(flow) => pin_page(&on, &flow.email, None),
        Err(elsewhere) => Ok(elsewhere),
    }
}

#[handler]
pub async fn pin(on: OnPage<'_>, CsrfForm(f): CsrfForm<PinForm>) -> AppResult<Response> {
    let token = on.token();
    match user_error(service::signin_pin(on.state, token, &f.pin, &on.visitor).await)? {
        Ok(_) => Ok(see_other("/signin/code")),
        Err(message) => {
            let Ok(flow) = service::current_flow(on.state, token, Purpose::Signin).await else {
                return Ok(SIGNIN.expired());
            };
            // The PIN was right but no code could be sent yet (a rate limit): the
            // next step is the code page, where "Send a new code" works later.
            if flow.stage == "code" {
                let page = &SIGNIN.code;
                return page.render(on.req, on.state, None, &flow.email, Some(message), None);
            }
            pin_page(&on, &flow.email, Some(message))
        }
    }
}

/// The access code of a sign-in: the session starts.
#[handler]
pub async fn code(on: OnPage<'_>, CsrfForm(f): CsrfForm<CodeForm>) -> AppResult<Response> {
    let (req, state, token, device) = (on.req, on.state, on.token(), on.device());
    let signed_in = service::signin_code(state, token, &f.code, device.as_deref(), &on.visitor);
    match user_error(signed_in.await)? {
        Ok(signed_in) => {
            clear_flow(req, state);
            csrf::rotate_browser_id(req);
            set_session(req, state, &signed_in.session_token);
            set_device(req, state, &signed_in.device_token);
            Ok(see_other(&signed_in.next))
        }
        Err(message) => SIGNIN.code_error(req, state, token, message).await,
    }
}

/// "Forgot PIN?" on the PIN page.
#[handler]
pub async fn forgot(on: OnPage<'_>, CsrfForm(_): CsrfForm<Empty>) -> AppResult<Response> {
    let (token, device) = (on.token(), on.device());
    let started = service::reset_start(on.state, token, device.as_deref(), &on.visitor);
    match user_error(started.await)? {
        Ok(started) => {
            set_flow(on.req, on.state, &started.token);
            Ok(see_other(RESET.code.action))
        }
        Err(message) => match service::current_flow(on.state, token, Purpose::Signin).await {
            Ok(flow) => pin_page(&on, &flow.email, Some(message)),
            Err(_) => Ok(SIGNIN.expired()),
        },
    }
}

#[handler]
pub async fn signout(on: OnPage<'_>, CsrfForm(_): CsrfForm<Empty>) -> AppResult<Response> {
    let (req, state) = (on.req, on.state);
    let c = &state.web.cookies;
    if let Some(token) = cookie(req, &c.session)
        && let Some((Subject::Client(id), _)) = session::resolve(state, Some(&token)).await?
        && let Some(client) = session::client(state, id).await?
    {
        let actor = client.actor();
        session::end(state, &token, actor, &client.email, &on.visitor).await?;
    }
    req.cookie().add(c.expire(&c.session));
    csrf::rotate_browser_id(req);
    Ok(see_other("/signin?notice=signed-out"))
}
