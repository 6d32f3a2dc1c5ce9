//! S3 sign-in, S3a forgotten PIN and S4 sign-out pages.

use minijinja::context;
use poem::web::{Data, Query};
use poem::{Request, Response, handler};

use super::{
    CodeForm, CodePage, Empty, NoticeQuery, clear_flow, flow_token, form_status, notice,
    public_page, see_other, set_device, set_flow, set_session, user_error,
};
use crate::accounts::AccountError;
use crate::accounts::codes::Purpose;
use crate::accounts::session::{self, Subject};
use crate::accounts::signin::{self as service, NextStep};
use crate::error::AppResult;
use crate::infra::web::csrf::{self, CsrfForm};
use crate::infra::web::page::cookie;
use crate::infra::web::{Visitor, local_path};
use crate::state::AppState;

const SIGNIN_CODE: CodePage = CodePage {
    title: "Enter your access code",
    intro: "We sent a 6-digit access code to",
    action: "/signin/code",
    resend: "/signin/resend",
    button: "Confirm",
    cancel: "/signin",
    help: "signing-in",
};

const RESET_CODE: CodePage = CodePage {
    title: "Reset your PIN",
    intro: "If this address has a portal, we sent a 6-digit access code to",
    action: "/signin/reset",
    resend: "/signin/reset/resend",
    button: "Confirm",
    cancel: "/signin",
    help: "forgot-pin",
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
    let status = form_status(&error);
    public_page(
        req,
        state,
        "signin.html",
        status,
        context! { email, next, error, notice => notice(notice_key) },
    )
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
    let status = form_status(&error);
    public_page(req, state, "pin.html", status, context! { email, error })
}

#[handler]
pub async fn pin_form(req: &Request, Data(state): Data<&AppState>) -> AppResult<Response> {
    match user_error(
        service::current_flow(state, flow_token(req, state).as_deref(), Purpose::Signin).await,
    )? {
        Ok(flow) if flow.stage == "pin" => pin_page(req, state, &flow.email, None),
        Ok(flow) if flow.stage == "code" => Ok(see_other("/signin/code")),
        _ => Ok(see_other("/signin?notice=expired")),
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
                return SIGNIN_CODE.render(req, state, None, &flow.email, Some(message), None);
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
    match user_error(
        service::current_flow(state, flow_token(req, state).as_deref(), Purpose::Signin).await,
    )? {
        Ok(flow) if flow.stage == "code" => {
            SIGNIN_CODE.render(req, state, None, &flow.email, None, q.notice.as_deref())
        }
        Ok(flow) if flow.stage == "pin" => Ok(see_other("/signin/pin")),
        _ => Ok(see_other("/signin?notice=expired")),
    }
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
            code_error(
                req,
                state,
                &SIGNIN_CODE,
                Purpose::Signin,
                token.as_deref(),
                message,
            )
            .await
        }
    }
}

/// Re-shows a code page with a message, or restarts when the flow is gone.
async fn code_error(
    req: &Request,
    state: &AppState,
    page: &CodePage,
    purpose: Purpose,
    token: Option<&str>,
    message: String,
) -> AppResult<Response> {
    match user_error(service::current_flow(state, token, purpose).await)? {
        Ok(flow) => page.render(req, state, None, &flow.email, Some(message), None),
        Err(_) => Ok(see_other(&format!("{}?notice=expired", page.cancel))),
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
            code_error(
                req,
                state,
                &SIGNIN_CODE,
                Purpose::Signin,
                token.as_deref(),
                message,
            )
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
    match user_error(
        service::current_flow(state, flow_token(req, state).as_deref(), Purpose::Reset).await,
    )? {
        Ok(flow) if flow.stage == "code" => {
            RESET_CODE.render(req, state, None, &flow.email, None, q.notice.as_deref())
        }
        Ok(flow) if flow.stage == "pin" => Ok(see_other("/signin/reset/pin")),
        _ => Ok(see_other("/signin?notice=expired")),
    }
}

#[handler]
pub async fn reset_code(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(f): CsrfForm<CodeForm>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    match user_error(service::reset_verify(state, token.as_deref(), &f.code).await)? {
        Ok(()) => Ok(see_other("/signin/reset/pin")),
        Err(message) => {
            code_error(
                req,
                state,
                &RESET_CODE,
                Purpose::Reset,
                token.as_deref(),
                message,
            )
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
            code_error(
                req,
                state,
                &RESET_CODE,
                Purpose::Reset,
                token.as_deref(),
                message,
            )
            .await
        }
    }
}

fn new_pin_page(req: &Request, state: &AppState, error: Option<String>) -> AppResult<Response> {
    let status = form_status(&error);
    public_page(
        req,
        state,
        "new_pin.html",
        status,
        context! { title => "Set a new PIN", action => "/signin/reset/pin", button => "Save PIN", help => "forgot-pin", error },
    )
}

#[handler]
pub async fn reset_pin_form(req: &Request, Data(state): Data<&AppState>) -> AppResult<Response> {
    match user_error(
        service::current_flow(state, flow_token(req, state).as_deref(), Purpose::Reset).await,
    )? {
        Ok(flow) if flow.stage == "pin" => new_pin_page(req, state, None),
        _ => Ok(see_other("/signin?notice=expired")),
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
        Err(message) => new_pin_page(req, state, Some(message)),
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
        let actor = client.actor();
        session::end(state, &token, actor, &client.email, &Visitor::of(req)).await?;
    }
    req.cookie().add(c.expire(&c.session));
    csrf::rotate_browser_id(req);
    Ok(see_other("/signin?notice=signed-out"))
}

pub fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
