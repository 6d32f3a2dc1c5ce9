//! S3 sign-in, S3a forgotten PIN and S4 sign-out pages.

use minijinja::context;
use poem::web::{Data, Query};
use poem::{Request, Response, handler};

use super::steps::{PinPage, Steps, public_form};
use super::{
    CodeForm, CodePage, Empty, NoticeQuery, clear_flow, flow_token, notice, see_other, set_device,
    set_flow, set_session, user_error,
};
use crate::accounts::AccountError;
use crate::accounts::codes::Purpose;
use crate::accounts::session::{self, Subject};
use crate::accounts::signin::{self as service, NextStep};
use crate::app::AppState;
use crate::error::AppResult;
use crate::infra::audit::Actor;
use crate::infra::web::csrf::{self, CsrfForm};
use crate::infra::web::page::cookie;
use crate::infra::web::{Visitor, local_path};

const SIGNIN: Steps = Steps {
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
    code_path: "/signin/code",
    pin_path: "/signin/pin",
};

const RESET: Steps = Steps {
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
    code_path: "/signin/reset",
    pin_path: "/signin/reset/pin",
};

const NEW_PIN: PinPage = PinPage {
    title: "Set a new PIN",
    action: "/signin/reset/pin",
    button: "Save PIN",
    help: "forgot-pin",
    create: false,
};

#[derive(serde::Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    next: String,
}

#[derive(serde::Deserialize)]
pub struct PinForm {
    #[serde(default)]
    pin: String,
}

#[derive(serde::Deserialize)]
pub struct NewPinForm {
    #[serde(default)]
    pin: String,
    #[serde(default)]
    confirm: String,
}

fn signin_page(
    req: &Request,
    state: &AppState,
    email: &str,
    next: &str,
    error: Option<String>,
    notice_key: Option<&str>,
) -> AppResult<Response> {
    let ctx = context! { email, next, notice => notice(notice_key) };
    public_form(req, state, "signin.html", error, ctx)
}

#[handler]
pub async fn form(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    let next = local_path(q.next.as_deref());
    signin_page(
        req,
        state,
        q.email.as_deref().unwrap_or(""),
        &next,
        None,
        q.notice.as_deref(),
    )
}

#[handler]
pub async fn start(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(f): CsrfForm<EmailForm>,
) -> AppResult<Response> {
    let next = local_path(Some(&f.next));
    let device = cookie(req, &state.web.cookies.device);
    match user_error(
        service::signin_start(state, &f.email, &next, device.as_deref(), &Visitor::of(req)).await,
    )? {
        Ok((started, step)) => {
            set_flow(req, state, &started.token);
            Ok(see_other(match step {
                NextStep::Pin => "/signin/pin",
                NextStep::Code => "/signin/code",
            }))
        }
        Err(message) => signin_page(req, state, &f.email, &next, Some(message), None),
    }
}

fn pin_page(
    req: &Request,
    state: &AppState,
    email: &str,
    error: Option<String>,
) -> AppResult<Response> {
    public_form(req, state, "pin.html", error, context! { email })
}

#[handler]
pub async fn pin_form(req: &Request, Data(state): Data<&AppState>) -> AppResult<Response> {
    match SIGNIN.at(req, state, "pin", true).await? {
        Ok(flow) => pin_page(req, state, &flow.email, None),
        Err(elsewhere) => Ok(elsewhere),
    }
}

#[handler]
pub async fn pin(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(f): CsrfForm<PinForm>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    match user_error(service::signin_pin(state, token.as_deref(), &f.pin, &Visitor::of(req)).await)?
    {
        Ok(_) => Ok(see_other("/signin/code")),
        Err(message) => {
            let Ok(flow) = service::current_flow(state, token.as_deref(), Purpose::Signin).await
            else {
                return Ok(see_other("/signin?notice=expired"));
            };
            // The PIN was right but no code could be sent yet (a rate limit): the
            // next step is the code page, where "Send a new code" works later.
            if flow.stage == "code" {
                let page = &SIGNIN.code;
                return page.render(req, state, None, &flow.email, Some(message), None);
            }
            pin_page(req, state, &flow.email, Some(message))
        }
    }
}

#[handler]
pub async fn code_form(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    SIGNIN.code_form(req, state, q.notice.as_deref()).await
}

#[handler]
pub async fn code(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(f): CsrfForm<CodeForm>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    let device = cookie(req, &state.web.cookies.device);
    match user_error(
        service::signin_code(
            state,
            token.as_deref(),
            &f.code,
            device.as_deref(),
            &Visitor::of(req),
        )
        .await,
    )? {
        Ok(signed_in) => {
            clear_flow(req, state);
            csrf::rotate_browser_id(req);
            set_session(req, state, &signed_in.session_token);
            set_device(req, state, &signed_in.device_token);
            Ok(see_other(&signed_in.next))
        }
        Err(message) => {
            SIGNIN
                .code_error(req, state, token.as_deref(), message)
                .await
        }
    }
}

#[handler]
pub async fn resend(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    match user_error(service::signin_resend(state, token.as_deref(), &Visitor::of(req)).await)? {
        Ok(_) => Ok(see_other("/signin/code?notice=code-sent")),
        Err(message) => {
            SIGNIN
                .code_error(req, state, token.as_deref(), message)
                .await
        }
    }
}

#[handler]
pub async fn forgot(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    let device = cookie(req, &state.web.cookies.device);
    let started = service::reset_start(
        state,
        token.as_deref(),
        device.as_deref(),
        &Visitor::of(req),
    )
    .await;
    match user_error(started)? {
        Ok(started) => {
            set_flow(req, state, &started.token);
            Ok(see_other("/signin/reset"))
        }
        Err(message) => match service::current_flow(state, token.as_deref(), Purpose::Signin).await
        {
            Ok(flow) => pin_page(req, state, &flow.email, Some(message)),
            Err(_) => Ok(see_other("/signin?notice=expired")),
        },
    }
}

#[handler]
pub async fn reset_form(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    RESET.code_form(req, state, q.notice.as_deref()).await
}

#[handler]
pub async fn reset_code(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(f): CsrfForm<CodeForm>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    let verified = service::verify_before_pin(state, token.as_deref(), Purpose::Reset, &f.code);
    match user_error(verified.await)? {
        Ok(()) => Ok(see_other("/signin/reset/pin")),
        Err(message) => {
            RESET
                .code_error(req, state, token.as_deref(), message)
                .await
        }
    }
}

#[handler]
pub async fn reset_resend(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    let device = cookie(req, &state.web.cookies.device);
    let sent = service::reset_resend(
        state,
        token.as_deref(),
        device.as_deref(),
        &Visitor::of(req),
    )
    .await;
    match user_error(sent)? {
        Ok(_) => Ok(see_other("/signin/reset?notice=code-sent")),
        Err(message) => {
            RESET
                .code_error(req, state, token.as_deref(), message)
                .await
        }
    }
}

#[handler]
pub async fn reset_pin_form(req: &Request, Data(state): Data<&AppState>) -> AppResult<Response> {
    match RESET.at(req, state, "pin", false).await? {
        Ok(_) => NEW_PIN.render(req, state, None),
        Err(expired) => Ok(expired),
    }
}

#[handler]
pub async fn reset_pin(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(f): CsrfForm<NewPinForm>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    match user_error(
        service::reset_finish(
            state,
            token.as_deref(),
            &f.pin,
            &f.confirm,
            &Visitor::of(req),
        )
        .await,
    )? {
        Ok(email) => {
            clear_flow(req, state);
            Ok(see_other(&format!(
                "/signin?notice=pin-reset&email={}",
                encode(&email)
            )))
        }
        Err(message) if message == AccountError::FlowExpired.to_string() => {
            Ok(see_other("/signin?notice=expired"))
        }
        Err(message) => NEW_PIN.render(req, state, Some(message)),
    }
}

#[handler]
pub async fn signout(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let c = &state.web.cookies;
    if let Some(token) = cookie(req, &c.session)
        && let Some((Subject::Client(id), _)) = session::resolve(state, Some(&token)).await?
        && let Some(client) = session::client(state, id).await?
    {
        let actor = Actor::Client(client.public_id.clone());
        session::end(state, &token, actor, &client.email, &Visitor::of(req)).await?;
    }
    req.cookie().add(c.expire(&c.session));
    csrf::rotate_browser_id(req);
    Ok(see_other("/signin?notice=signed-out"))
}

pub fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
