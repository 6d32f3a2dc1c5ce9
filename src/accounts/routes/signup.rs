//! S2 sign-up pages: Name and Email, access code, Create PIN.

use minijinja::context;
use poem::web::{Data, Query};
use poem::{Request, Response, handler};

use super::signin::encode;
use super::{
    CodeForm, CodePage, Empty, NoticeQuery, clear_flow, flow_token, form_status, message, notice,
    public_page, see_other, set_flow, user_error,
};
use crate::accounts::AccountError;
use crate::accounts::codes::Purpose;
use crate::accounts::signin as service;
use crate::error::AppResult;
use crate::infra::web::Visitor;
use crate::infra::web::csrf::CsrfForm;
use crate::state::AppState;

const SIGNUP_CODE: CodePage = CodePage {
    title: "Verify your email",
    intro: "If this address may open a portal here, we sent a 6-digit access code to",
    action: "/signup/verify",
    resend: "/signup/resend",
    button: "Confirm",
    cancel: "/signup",
    help: "signing-up",
};

#[derive(serde::Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
}

#[derive(serde::Deserialize)]
pub struct NewPinForm {
    #[serde(default)]
    pin: String,
    #[serde(default)]
    confirm: String,
}

fn signup_page(
    req: &Request,
    state: &AppState,
    name: &str,
    email: &str,
    error: Option<String>,
    notice_key: Option<&str>,
) -> AppResult<Response> {
    let status = form_status(&error);
    public_page(
        req,
        state,
        "signup.html",
        status,
        context! { name, email, error, notice => notice(notice_key) },
    )
}

#[handler]
pub async fn form(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    signup_page(
        req,
        state,
        "",
        q.email.as_deref().unwrap_or(""),
        None,
        q.notice.as_deref(),
    )
}

#[handler]
pub async fn start(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(f): CsrfForm<SignupForm>,
) -> AppResult<Response> {
    match user_error(service::signup_start(state, &f.name, &f.email, &Visitor::of(req)).await)? {
        Ok(started) => {
            set_flow(req, state, &started.token);
            Ok(see_other("/signup/verify"))
        }
        Err(message) => signup_page(req, state, &f.name, &f.email, Some(message), None),
    }
}

#[handler]
pub async fn code_form(
    req: &Request,
    Data(state): Data<&AppState>,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    match user_error(
        service::current_flow(state, flow_token(req, state).as_deref(), Purpose::Signup).await,
    )? {
        Ok(flow) if flow.stage == "code" => {
            SIGNUP_CODE.render(req, state, None, &flow.email, None, q.notice.as_deref())
        }
        Ok(flow) if flow.stage == "pin" => Ok(see_other("/signup/pin")),
        _ => Ok(see_other("/signup?notice=expired")),
    }
}

async fn code_error(
    req: &Request,
    state: &AppState,
    token: Option<&str>,
    message: String,
) -> AppResult<Response> {
    match user_error(service::current_flow(state, token, Purpose::Signup).await)? {
        Ok(flow) => SIGNUP_CODE.render(req, state, None, &flow.email, Some(message), None),
        Err(_) => Ok(see_other("/signup?notice=expired")),
    }
}

#[handler]
pub async fn code(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(f): CsrfForm<CodeForm>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    match user_error(service::signup_verify(state, token.as_deref(), &f.code).await)? {
        Ok(()) => Ok(see_other("/signup/pin")),
        Err(message) => code_error(req, state, token.as_deref(), message).await,
    }
}

#[handler]
pub async fn resend(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(_): CsrfForm<Empty>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    match user_error(service::signup_resend(state, token.as_deref(), &Visitor::of(req)).await)? {
        Ok(_) => Ok(see_other("/signup/verify?notice=code-sent")),
        Err(message) => code_error(req, state, token.as_deref(), message).await,
    }
}

fn pin_page(req: &Request, state: &AppState, error: Option<String>) -> AppResult<Response> {
    let status = form_status(&error);
    let ctx = context! { title => "Create your PIN", action => "/signup/pin", button => "Create Account", help => "signing-up", error, create => true };
    public_page(req, state, "new_pin.html", status, ctx)
}

#[handler]
pub async fn pin_form(req: &Request, Data(state): Data<&AppState>) -> AppResult<Response> {
    match user_error(
        service::current_flow(state, flow_token(req, state).as_deref(), Purpose::Signup).await,
    )? {
        Ok(flow) if flow.stage == "pin" => pin_page(req, state, None),
        Ok(flow) if flow.stage == "code" => Ok(see_other("/signup/verify")),
        _ => Ok(see_other("/signup?notice=expired")),
    }
}

#[handler]
pub async fn pin(
    req: &Request,
    Data(state): Data<&AppState>,
    CsrfForm(f): CsrfForm<NewPinForm>,
) -> AppResult<Response> {
    let token = flow_token(req, state);
    match service::signup_finish(
        state,
        token.as_deref(),
        &f.pin,
        &f.confirm,
        &Visitor::of(req),
    )
    .await
    {
        Ok(email) => {
            clear_flow(req, state);
            Ok(see_other(&format!(
                "/signin?notice=account-created&email={}",
                encode(&email)
            )))
        }
        Err(AccountError::FlowExpired) => Ok(see_other("/signup?notice=expired")),
        Err(e) => pin_page(req, state, Some(message(e)?)),
    }
}
